/**
 * Starts the server: checks the configuration, warms the checker and the sandbox, listens, and
 * shuts down gracefully (stop accepting, let in-flight requests finish up to a deadline, stop
 * the sandboxes, flush the log).
 */
import type { RequestListener, ServerOptions } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer, type ServerType } from '@hono/node-server';
import { RedisStore, type Store } from 'hono-rate-limiter';
import { createClient } from 'redis';
import { Checker } from '../check/checker.js';
import { NbsError } from '../errors.js';
import { loadPolicy, shippedPolicyNames, type Policy } from '../policy/load.js';
import { compileNetRules, createGuardedFetcher } from '../sandbox/permissions/net.js';
import { createSandbox, type Sandbox } from '../sandbox/sandbox.js';
import { createApp, type Api } from './app.js';
import { fallbackStore } from './fallback-store.js';
import { createAuditLog, flushAuditLog, type AuditLogger, type AuditLogOptions } from './audit-log.js';
import type { ServerConfig } from './config.js';
import { boundedBodyServer } from './unread-bodies.js';
import { readWebAssets } from './web.js';

export interface RunningServer {
  readonly url: string;
  readonly api: Api;
  readonly log: AuditLogger;
  /** Graceful shutdown; resolves when everything is stopped and the log is flushed. */
  close(): Promise<void>;
}

type RedisConnection = ReturnType<typeof createClient>;

/** hono-rate-limiter's RedisStore over a node-redis client, one key prefix per budget. */
export function redisStores(client: RedisConnection): Record<'check' | 'run' | 'other', Store> {
  const adapter = {
    scriptLoad: (script: string) => client.scriptLoad(script),
    evalsha: <TArgs extends unknown[], TData = unknown>(sha1: string, keys: string[], args: TArgs) =>
      client.evalSha(sha1, { keys, arguments: args.map(String) }) as Promise<TData>,
    decr: (key: string) => client.decr(key),
    del: (key: string) => client.del(key),
  };
  return {
    check: new RedisStore({ client: adapter, prefix: 'nbs:rl:check:' }),
    run: new RedisStore({ client: adapter, prefix: 'nbs:rl:run:' }),
    other: new RedisStore({ client: adapter, prefix: 'nbs:rl:other:' }),
  };
}

/** Each shared store falls back to instance memory while Redis fails (logged once per minute). */
function sharedStores(stores: Record<'check' | 'run' | 'other', Store>, warn: () => void): Record<'check' | 'run' | 'other', Store> {
  let lastWarning = 0;
  const onFailure = () => {
    if (Date.now() - lastWarning < 60_000) return;
    lastWarning = Date.now();
    warn();
  };
  return { check: fallbackStore(stores.check, onFailure), run: fallbackStore(stores.run, onFailure), other: fallbackStore(stores.other, onFailure) };
}

/**
 * The policies requests may name: every shipped one, or those `NBS_POLICIES` lists, and always
 * the default. The other shipped ones are refused by name (403), not unknown.
 */
async function policyRegistry(config: ServerConfig): Promise<{ policies: Map<string, Policy>; refused: Set<string>; defaultId: string }> {
  const chosen = await loadPolicy(config.policy);
  const allowed = new Set(config.policies ?? shippedPolicyNames());
  const policies = new Map<string, Policy>();
  for (const name of allowed) {
    if (name === chosen.id) continue;
    if (!shippedPolicyNames().includes(name)) throw new NbsError('NBS_CONFIG_INVALID', 'NBS_POLICIES names a policy that is not shipped');
    policies.set(name, await loadPolicy(name));
  }
  policies.set(chosen.id, chosen);
  const refused = new Set(shippedPolicyNames().filter((name) => !policies.has(name)));
  return { policies, refused, defaultId: chosen.id };
}

export async function startServer(config: ServerConfig, logOptions: AuditLogOptions = {}): Promise<RunningServer> {
  const log = createAuditLog({ file: config.logFile, ...logOptions });
  const { policies, refused, defaultId } = await policyRegistry(config);
  const checker = new Checker({ workers: config.checkWorkers, timeoutMs: config.checkTimeoutMs });
  let sandbox: Sandbox | undefined;
  let redis: RedisConnection | null = null;
  try {
    await checker.warmUp();
    sandbox = await createSandbox({
      warmProcesses: config.warmSandboxes,
      maxConcurrentRuns: config.maxConcurrentRuns,
      // The server admits at most this many runs itself; the sandbox's queue only has to hold them.
      maxQueuedRuns: config.maxQueuedRuns,
    });
    await sandbox.warmUp();
    const { startMode, snapshotReason } = sandbox.stats();
    if (startMode !== 'snapshot') log.warn({ event: 'sandbox-plain-start', reason: snapshotReason });
    if (config.redisUrl) {
      // Commands fail at once while disconnected (instead of queueing), so the fallback store takes over.
      redis = createClient({ url: config.redisUrl, disableOfflineQueue: true });
      redis.on('error', () => log.error({ event: 'redis-error' }));
      await redis.connect();
    }
  } catch (error) {
    // A failed start must not leave workers or processes behind to keep the process alive.
    await Promise.allSettled([checker.close(), sandbox?.close(), redis?.quit()]);
    await flushAuditLog(log);
    throw error;
  }
  const running = sandbox;
  const fetchRules = compileNetRules({ allow: config.fetchHosts });
  const fetchNotebook =
    config.fetchHosts.length > 0
      ? createGuardedFetcher({
          rules: fetchRules,
          allowAddresses: fetchRules.listedAddresses,
          maxResponseBytes: config.bodyLimit,
          timeoutMs: 30_000,
        })
      : null;
  const api = createApp({
    config,
    checker,
    sandbox: running,
    log,
    policies,
    refusedPolicies: refused,
    defaultPolicy: defaultId,
    ...(redis ? { stores: sharedStores(redisStores(redis), () => log.warn({ event: 'rate-limit-store-fallback' })) } : {}),
    fetchNotebook,
    web: readWebAssets(),
    listeningPort: () => listeningPort,
  });

  let listeningPort: number | undefined;
  const server: ServerType = await new Promise((resolve) => {
    // Unread bodies are thrown away by boundedBodyServer, with a longer, bounded grace than @hono/node-server's.
    const started = createAdaptorServer({
      fetch: api.app.fetch,
      hostname: config.host,
      autoCleanupIncoming: false,
      createServer: ((options: ServerOptions, listener: RequestListener) =>
        boundedBodyServer(options, listener, { bodyLimit: config.bodyLimit, maxDiscardBytes: Math.max(64 * 1024 * 1024, 4 * config.bodyLimit), maxDiscardMs: 30_000 })) as never,
    });
    // Bounded connections and time to send a request: slow or idle clients cannot hold the server.
    const http = started as import('node:http').Server;
    http.maxConnections = config.maxConnections;
    http.headersTimeout = 20_000;
    http.requestTimeout = 120_000;
    started.listen(config.port, config.host, () => resolve(started));
  });
  const address = server.address() as AddressInfo;
  listeningPort = address.port;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  log.info({ event: 'listening', url, policy: defaultId, redis: redis !== null });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      api.stopAccepting();
      // Stop listening, let the requests being handled finish (up to the deadline), give their
      // responses a moment to leave, then close every connection.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = Date.now() + config.shutdownGraceMs;
      while (api.activeRequests() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
      await new Promise((resolve) => setTimeout(resolve, 100));
      (server as ServerType & { closeAllConnections?: () => void }).closeAllConnections?.();
      await closed;
      await running.close();
      await checker.close();
      if (redis) await redis.quit().catch(() => undefined);
      log.info({ event: 'stopped' });
      await flushAuditLog(log);
    })());
  return { url, api, log, close };
}
