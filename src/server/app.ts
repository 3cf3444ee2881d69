/**
 * The HTTP API and web page as a Hono app. Everything it needs comes in `AppDeps`, so tests
 * drive it with `app.request()` and the server entry point (serve.ts) wires the real pieces.
 */
import { randomUUID } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { Store } from 'hono-rate-limiter';
import type { Checker } from '../check/checker.js';
import { NbsError, errorCodes, isNbsError, type ErrorCode } from '../errors.js';
import type { CheckResult } from '../check/types.js';
import { loadInputText, type LoadedInput } from '../notebook/index.js';
import type { Policy } from '../policy/load.js';
import { deniedResult } from '../sandbox/denied.js';
import type { GuardedFetch } from '../sandbox/permissions/net.js';
import { policyPermissions } from '../sandbox/permissions/from-policy.js';
import type { Sandbox } from '../sandbox/sandbox.js';
import type { RunResult } from '../sandbox/types.js';
import type { AuditLogger } from './audit-log.js';
import type { ServerConfig } from './config.js';
import { CheckAnswers, type CheckLogFields } from './check-answers.js';
import { UnsentAnswers } from './unsent-answers.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { allowedHosts } from './allowed-hosts.js';
import { clientAddress, clientHash, rateLimit, requireApiKey } from './protection.js';
import { mediaTypeOf, readSubmission, validateSubmission, type Submission } from './submission.js';
import type { WebAssets } from './web.js';

export interface AppDeps {
  readonly config: ServerConfig;
  readonly checker: Checker;
  readonly sandbox: Sandbox;
  readonly log: AuditLogger;
  /** Policies requests may name, by id; `config.policy`'s id is the default. */
  readonly policies: ReadonlyMap<string, Policy>;
  /** Policies this installation has that the operator does not let requests name (answered 403). */
  readonly refusedPolicies?: ReadonlySet<string>;
  readonly defaultPolicy: string;
  /** Rate-limit stores by budget (memory when absent). */
  readonly stores?: Partial<Record<'check' | 'run' | 'other', Store>>;
  /** The SSRF-guarded fetcher for `{ url }` submissions; null disables them. */
  readonly fetchNotebook: GuardedFetch | null;
  readonly web: WebAssets;
  /** The port the server listens on, once known (PORT may be 0); default: the configured port. */
  readonly listeningPort?: () => number | undefined;
}

/** Warm sandbox start-ups failed in a row before /readyz reports the instance not ready. */
const SANDBOX_FAILURES_NOT_READY = 3;

type Variables = { requestId: string; client: string; answerKey: string | null };
export type NbsApp = Hono<{ Variables: Variables }>;

export interface Api {
  readonly app: NbsApp;
  /** Marks the server as shutting down: /readyz answers 503 and new runs are refused. */
  stopAccepting(): void;
  /** Runs executing or waiting in the sandbox's queue now. */
  inFlight(): number;
  /** Requests being handled now. */
  activeRequests(): number;
}

export function createApp(deps: AppDeps): Api {
  const { config, log } = deps;
  const app: NbsApp = new Hono<{ Variables: Variables }>();
  let active = 0;
  let accepting = true;
  const answers = new CheckAnswers();
  const unsent = new UnsentAnswers(config.responseBufferLimit);
  const metrics = config.metrics
    ? createMetrics({ sandbox: deps.sandbox, checker: deps.checker, answers: () => answers.stats() })
    : null;

  const event = (c: Context<{ Variables: Variables }>, name: string, fields: Record<string, unknown> = {}) =>
    log.info({ event: name, requestId: c.get('requestId'), client: clientHash(c.get('client')), ...fields });

  const errorResponse = (c: Context<{ Variables: Variables }>, code: ErrorCode, message: string, status: number) =>
    c.json({ error: { code, message, requestId: c.get('requestId') } }, status as 400);

  app.use('*', async function requestLine(c, next) {
    const startedAt = performance.now();
    c.set('requestId', randomUUID());
    c.set('client', clientAddress(c, config.trustProxy));
    c.header('X-Request-Id', c.get('requestId'));
    active += 1;
    try {
      await next();
    } finally {
      active -= 1;
    }
    const elapsedMs = performance.now() - startedAt;
    metrics?.observeRequest(c.req.method, c.req.routePath, c.res.status, elapsedMs / 1000);
    log.info({
      event: 'request',
      requestId: c.get('requestId'),
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      durationMs: Math.round(elapsedMs),
      client: clientHash(c.get('client')),
    });
  });

  const hosts = allowedHosts({ listenHost: config.host, port: deps.listeningPort ?? (() => config.port), extra: config.allowedHosts });
  app.use('*', async function hostCheck(c, next) {
    const host = c.req.header('host') ?? new URL(c.req.url).host;
    if (!hosts.allows(host)) {
      event(c, 'host-refused');
      throw new NbsError('NBS_HOST_NOT_ALLOWED');
    }
    await next();
  });

  app.use(
    '*',
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
      strictTransportSecurity: config.hsts ? 'max-age=63072000; includeSubDomains' : false,
      referrerPolicy: 'no-referrer',
      permissionsPolicy: { camera: [], microphone: [], geolocation: [], payment: [], usb: [], fullscreen: [], clipboardRead: [], clipboardWrite: [] },
      crossOriginOpenerPolicy: 'same-origin',
      crossOriginResourcePolicy: 'same-origin',
      crossOriginEmbedderPolicy: false,
      xFrameOptions: 'DENY',
      xContentTypeOptions: 'nosniff',
      xXssProtection: '0',
    }),
  );

  // Set before the handler runs: a header added after it makes Hono copy the finished response,
  // which halves the throughput of @hono/node-server (measured).
  app.use('/v1/*', async function noStore(c, next) {
    c.header('Cache-Control', 'no-store');
    await next();
  });

  const keyOf = (c: Context) => (c as Context<{ Variables: Variables }>).get('client');
  const limited = (c: Context) => event(c as Context<{ Variables: Variables }>, 'rate-limited', { route: c.req.path });
  app.use('/v1/check', rateLimit({ name: 'check', perMinute: config.rateLimitCheck, store: deps.stores?.check, keyOf, onLimited: limited }));
  app.use('/v1/run', rateLimit({ name: 'run', perMinute: config.rateLimitRun, store: deps.stores?.run, keyOf, onLimited: limited }));
  app.use('*', async function otherRoutes(c, next) {
    if (c.req.path === '/v1/check' || c.req.path === '/v1/run') return next();
    return otherLimiter(c, next);
  });
  const otherLimiter = rateLimit({
    name: 'other',
    perMinute: config.rateLimitOther,
    store: deps.stores?.other,
    keyOf,
    onLimited: limited,
  });

  if (config.apiKeys.length > 0) {
    const authFailed = (c: Context) => event(c as Context<{ Variables: Variables }>, 'auth-failed', { route: c.req.path });
    app.use('/v1/run', requireApiKey(config.apiKeys, authFailed));
    if (config.keysForCheck) app.use('/v1/check', requireApiKey(config.apiKeys, authFailed));
  }

  // Browsers send Origin (or Sec-Fetch-Site) with every POST: a form posted from another site is
  // refused. API clients send neither and are not subject to CSRF.
  const crossSiteForms = csrf();
  app.use('/v1/*', async function browserPosts(c, next) {
    if (c.req.header('origin') === undefined && c.req.header('sec-fetch-site') === undefined) return next();
    return crossSiteForms(c, next);
  });
  app.use(
    '/v1/*',
    bodyLimit({
      maxSize: config.bodyLimit,
      onError: () => {
        throw new NbsError('NBS_INPUT_TOO_LARGE');
      },
    }),
  );

  const policyFor = (name: string | undefined): Policy => {
    const policy = deps.policies.get(name ?? deps.defaultPolicy);
    if (!policy) throw new NbsError(name !== undefined && deps.refusedPolicies?.has(name) ? 'NBS_POLICY_FORBIDDEN' : 'NBS_POLICY_UNKNOWN');
    return policy;
  };

  const uploadFields = (submission: Submission): Record<string, unknown> => ({
    bytes: submission.bytes,
    sha256: submission.sha256,
    filename: submission.filename,
    kind: submission.kind,
  });
  const verdictFields = (result: CheckResult, policy: Policy): Record<string, unknown> => ({
    verdict: result.verdict,
    policy: policy.id,
    rules: [...new Set(result.findings.map((finding) => finding.ruleId))],
  });

  /** The validated submission, logged as received, with its policy and loaded input. */
  const receive = async (c: Context<{ Variables: Variables }>) => {
    const submission = await readSubmission(c, deps.fetchNotebook, config.bodyLimit);
    event(c, 'upload', uploadFields(submission));
    const policy = policyFor(submission.policy);
    return { submission, policy, input: loadInputText(submission.kind, submission.text, policy.limits) };
  };

  const checkLogged = async (c: Context<{ Variables: Variables }>, input: LoadedInput, policy: Policy): Promise<CheckResult> => {
    const result = await deps.checker.check(input.check, policy);
    event(c, 'verdict', verdictFields(result, policy));
    return result;
  };

  /** A JSON body seen before gets the answer it got then, without parsing (see check-answers.ts). */
  const answerRepeatedCheck: MiddlewareHandler<{ Variables: Variables }> = async (c, next) => {
    // Only JSON bodies are kept: multipart bodies differ in their boundary every time.
    const key = mediaTypeOf(c) === 'application/json' ? CheckAnswers.keyOf(await c.req.text()) : null;
    c.set('answerKey', key);
    const cached = key === null ? undefined : answers.get(key);
    if (!cached) return next();
    event(c, 'upload', cached.log.upload);
    event(c, 'verdict', { ...cached.log.verdict, cached: true });
    return c.body(cached.body, 200, { 'Content-Type': 'application/json' });
  };

  app.post('/v1/check', answerRepeatedCheck, validateSubmission, async (c) => {
    const { submission, policy, input } = await receive(c);
    const result = await checkLogged(c, input, policy);
    const body = JSON.stringify(result);
    const key = c.get('answerKey');
    if (key !== null && !submission.fetched) {
      const log: CheckLogFields = { upload: uploadFields(submission), verdict: verdictFields(result, policy) };
      answers.set(key, { body, log });
    }
    return c.body(body, 200, { 'Content-Type': 'application/json' });
  });

  /** Runs wait in the sandbox's own bounded queue; refuse early when it is full or we are stopping. */
  const refuseRun = (c: Context<{ Variables: Variables }>): never => {
    c.header('Retry-After', '5');
    event(c, 'queue-full');
    throw new NbsError('NBS_BUSY');
  };
  const sandboxFull = (): boolean => {
    const { running, queued, maxConcurrentRuns, maxQueuedRuns } = deps.sandbox.stats();
    return running + queued >= maxConcurrentRuns + maxQueuedRuns || unsent.full();
  };

  app.post('/v1/run', validateSubmission, async (c) => {
    const { submission, policy, input } = await receive(c);
    if (!accepting || sandboxFull()) refuseRun(c);
    const check = await checkLogged(c, input, policy);
    let result: RunResult;
    if (check.verdict === 'deny') {
      result = deniedResult(check);
    } else {
      const timeoutMs = Math.min(submission.timeoutMs ?? policy.limits.timeoutMs, config.maxRunTimeoutMs);
      let run: RunResult;
      try {
        run = await deps.sandbox.run(
          { cells: input.cells },
          {
            timeoutMs,
            memoryMb: policy.limits.memoryMb,
            permissions: policyPermissions(policy),
            onAudit: (audit) => {
              if (!audit.allowed) event(c, 'permission-denied', { kind: audit.kind, value: audit.value.slice(0, 128), source: audit.source, runId: audit.runId });
            },
          },
        );
      } catch (error) {
        if (isNbsError(error) && error.code === 'NBS_BUSY') refuseRun(c);
        throw error;
      }
      result = { ...run, check };
    }
    event(c, 'run', { runId: result.runId, status: result.status, durationMs: result.durationMs });
    if (result.status === 'killed') event(c, 'sandbox-crash', { runId: result.runId, code: result.error?.code });
    const body = JSON.stringify(result);
    unsent.hold(c, Buffer.byteLength(body));
    return c.body(body, 200, { 'Content-Type': 'application/json' });
  });

  app.get('/v1/policies', (c) =>
    c.json({
      default: deps.defaultPolicy,
      policies: [...deps.policies.values()].map((policy) => ({ id: policy.id, version: policy.version, description: policy.description, hash: policy.hash })),
    }),
  );
  app.get('/v1/policies/:id', (c) => {
    const policy = deps.policies.get(c.req.param('id'));
    if (!policy) throw new NbsError('NBS_NOT_FOUND');
    return c.json(policy);
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const sandboxes = deps.sandbox.stats();
    // Busy sandboxes are normal; sandboxes that cannot even start mean runs here would fail.
    const failing = sandboxes.startFailuresInARow >= SANDBOX_FAILURES_NOT_READY;
    const ready = accepting && !failing;
    return c.json(
      {
        ready,
        ...(!accepting ? { reason: 'shutting down' } : failing ? { reason: 'sandbox processes keep failing to start' } : {}),
        runs: { running: sandboxes.running, queued: sandboxes.queued, maxConcurrent: sandboxes.maxConcurrentRuns, maxQueued: sandboxes.maxQueuedRuns },
        sandboxes,
        checkCache: deps.checker.cacheStats(),
        answerCache: answers.stats(),
      },
      ready ? 200 : 503,
    );
  });
  if (metrics) {
    app.get('/metrics', async (c) => {
      c.header('Content-Type', metrics.contentType);
      c.header('Cache-Control', 'no-store');
      return c.body(await metrics.render());
    });
  }
  app.get('/openapi.json', (c) => c.json(openApiDocument(deps.policies)));

  app.get('/', (c) => c.html(deps.web.page));
  app.get('/static/:name', (c) => {
    const asset = deps.web.assets.get(c.req.param('name'));
    if (!asset) throw new NbsError('NBS_NOT_FOUND');
    c.header('Content-Type', asset.type);
    c.header('Cache-Control', 'no-cache');
    return c.body(new Uint8Array(asset.body));
  });

  app.notFound(() => {
    throw new NbsError('NBS_NOT_FOUND');
  });

  app.onError((error, c) => {
    if (c.req.raw.signal?.aborted) {
      // The client went away mid-request (a dropped upload, a slow-body attack): not our error.
      event(c, 'client-aborted');
      return errorResponse(c, 'NBS_REQUEST_INVALID', errorCodes.NBS_REQUEST_INVALID.message, 400);
    }
    if (isNbsError(error)) {
      if (error.status === 400 || error.status === 415 || error.status === 422) event(c, 'validation-failed', { code: error.code });
      if (error.status >= 500 && error.code !== 'NBS_BUSY') log.error({ event: 'server-error', requestId: c.get('requestId'), code: error.code });
      return errorResponse(c, error.code, error.message, error.status);
    }
    if (error instanceof HTTPException) {
      const byStatus: Record<number, ErrorCode> = { 403: 'NBS_FORBIDDEN', 404: 'NBS_NOT_FOUND', 405: 'NBS_METHOD_NOT_ALLOWED', 413: 'NBS_INPUT_TOO_LARGE', 415: 'NBS_MEDIA_TYPE_UNSUPPORTED' };
      const code: ErrorCode = byStatus[error.status] ?? 'NBS_REQUEST_INVALID';
      event(c, 'validation-failed', { code });
      return errorResponse(c, code, errorCodes[code].message, errorCodes[code].status);
    }
    log.error({ event: 'server-error', requestId: c.get('requestId'), error: error instanceof Error ? error.name : 'unknown' });
    return errorResponse(c, 'NBS_INTERNAL', errorCodes.NBS_INTERNAL.message, 500);
  });

  return {
    app,
    stopAccepting: () => {
      accepting = false;
    },
    inFlight: () => {
      const { running, queued } = deps.sandbox.stats();
      return running + queued;
    },
    activeRequests: () => active,
  };
}
