/**
 * The HTTP API through `app.request()` with the real checker and sandbox: every status and
 * header the server promises, the audit log, and a graceful shutdown of a listening server.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Checker, createSandbox, loadPolicy, Sandbox } from '../dist/index.js';
import type { Policy } from '../dist/index.js';
import { locateRuntime } from '../dist/sandbox/locate.js';
import { createApp, type Api } from '../dist/server/app.js';
import { createAuditLog } from '../dist/server/audit-log.js';
import { readConfig } from '../dist/server/config.js';
import { startServer } from '../dist/server/serve.js';
import { readWebAssets } from '../dist/server/web.js';
import { compileNetRules, createGuardedFetcher } from '../dist/sandbox/permissions/net.js';
import { NOTEBOOKS } from './helpers.js';

const API_KEY = 'test-key-0123456789abcdef';
const SECRET_MARKER = 'notebook-content-marker-7f3a';

interface LogLine {
  readonly event?: string;
  readonly [key: string]: unknown;
}

let checker: Checker;
let sandbox: Sandbox;
let policies: Map<string, Policy>;

function makeApi(env: Record<string, string> = {}, extra: { fetchHosts?: string[]; sandbox?: Sandbox } = {}): { api: Api; lines: LogLine[]; raw: string[] } {
  const raw: string[] = [];
  const lines: LogLine[] = [];
  const log = createAuditLog({
    stream: {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  });
  const config = readConfig({ NBS_RATE_LIMIT_CHECK: '0', NBS_RATE_LIMIT_RUN: '0', ...env });
  const fetchNotebook = extra.fetchHosts
    ? createGuardedFetcher({ rules: compileNetRules({ allow: extra.fetchHosts }), allowAddresses: ['127.0.0.1'], maxResponseBytes: config.bodyLimit })
    : null;
  const api = createApp({ config, checker, sandbox: extra.sandbox ?? sandbox, log, policies, defaultPolicy: 'default', fetchNotebook, web: readWebAssets() });
  return { api, lines, raw };
}

const json = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

function upload(name: string, text: string, fields: Record<string, string> = {}, headers: Record<string, string> = {}): RequestInit {
  const form = new FormData();
  form.set('file', new File([text], name));
  for (const [key, value] of Object.entries(fields)) form.set(key, value);
  return { method: 'POST', body: form, headers };
}

async function errorOf(response: Response): Promise<{ code: string; message: string; requestId: string }> {
  const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'requestId']);
  assert.equal(body.error.requestId, response.headers.get('x-request-id'));
  assert.doesNotMatch(body.error.message, /\n\s+at |\/work\/|\/tmp\//, 'no stack trace or host path');
  return body.error;
}

before(async () => {
  checker = new Checker();
  await checker.warmUp();
  sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 2 });
  policies = new Map();
  for (const name of ['default', 'strict', 'permissive']) policies.set(name, await loadPolicy(name));
});
after(async () => {
  await sandbox.close();
  await checker.close();
});

describe('HTTP API', () => {
  it('sends strict security headers everywhere, no-store on the API and no server banner', async () => {
    const { api } = makeApi();
    for (const path of ['/', '/healthz', '/v1/policies', '/static/app.js']) {
      const response = await api.app.request(path);
      assert.equal(response.status, 200, path);
      const csp = response.headers.get('content-security-policy') ?? '';
      for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"]) {
        assert.ok(csp.includes(directive), `${path}: ${directive}`);
      }
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.match(response.headers.get('permissions-policy') ?? '', /camera=\(\)/);
      assert.equal(response.headers.get('cross-origin-opener-policy'), 'same-origin');
      assert.equal(response.headers.get('cross-origin-resource-policy'), 'same-origin');
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(response.headers.get('x-frame-options'), 'DENY');
      assert.equal(response.headers.get('strict-transport-security'), null, 'HSTS only when told about TLS');
      assert.equal(response.headers.get('server'), null);
      assert.equal(response.headers.get('x-powered-by'), null);
    }
    assert.equal((await api.app.request('/v1/policies')).headers.get('cache-control'), 'no-store');
    const tls = makeApi({ NBS_HSTS: '1' });
    assert.match((await tls.api.app.request('/healthz')).headers.get('strict-transport-security') ?? '', /max-age=\d+/);
  });

  it('checks JSON source and uploaded notebooks, answering 200 for every verdict', async () => {
    const { api } = makeApi();
    const denied = await api.app.request('/v1/check', json({ source: 'import os\nos.system("id")' }));
    assert.equal(denied.status, 200);
    const deniedBody = (await denied.json()) as { verdict: string; policy: { id: string }; findings: { ruleId: string }[] };
    assert.equal(deniedBody.verdict, 'deny');
    assert.equal(deniedBody.policy.id, 'default');
    assert.ok(deniedBody.findings.some((finding) => finding.ruleId === 'NBS-PROC-001'));
    const notebook = readFileSync(join(NOTEBOOKS, 'v4.5.ipynb'), 'utf8');
    const uploaded = await api.app.request('/v1/check', upload('test4.5.ipynb', notebook, { policy: 'strict' }));
    assert.equal(uploaded.status, 200);
    assert.equal(((await uploaded.json()) as { policy: { id: string } }).policy.id, 'strict');
    const asObject = await api.app.request('/v1/check', json({ notebook: JSON.parse(notebook) }));
    assert.equal(asObject.status, 200);
  });

  it('runs benign code, refuses denied code without running it, and reports timeouts as 200', async () => {
    const { api } = makeApi();
    const ok = await api.app.request('/v1/run', json({ source: `print("${SECRET_MARKER}")\n6 * 7` }));
    assert.equal(ok.status, 200);
    const okBody = (await ok.json()) as { status: string; stdout: string; check: { verdict: string } };
    assert.equal(okBody.status, 'ok');
    assert.equal(okBody.stdout, `${SECRET_MARKER}\n`);
    const denied = await api.app.request('/v1/run', upload('bad.py', 'print("ran")\nimport os\nos.system("id")'));
    const deniedBody = (await denied.json()) as { status: string; stdout: string };
    assert.equal(denied.status, 200);
    assert.equal(deniedBody.status, 'denied');
    assert.equal(deniedBody.stdout, '');
    const slow = await api.app.request('/v1/run', json({ source: 'while True:\n    pass', timeoutMs: 1500 }));
    assert.equal(slow.status, 200);
    assert.equal(((await slow.json()) as { status: string }).status, 'timeout');
  });

  it('answers malformed input with 400 and never echoes it', async () => {
    const { api } = makeApi();
    const broken = await api.app.request('/v1/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"source": "x", SECRET' });
    assert.equal(broken.status, 400);
    assert.equal((await errorOf(broken)).code, 'NBS_REQUEST_INVALID');
    for (const body of [{ source: 42 }, { source: 'x', extra: 'echo-me-not-91c2' }, { policy: '../../etc/passwd', source: 'x' }, {}]) {
      const response = await api.app.request('/v1/check', json(body));
      assert.equal(response.status, 400, JSON.stringify(body));
      const text = JSON.stringify(await errorOf(response));
      assert.ok(!text.includes('echo-me-not-91c2') && !text.includes('passwd'), text);
    }
    const fields = await api.app.request('/v1/check', upload('a.py', 'x', { unexpected: '1' }));
    assert.equal(fields.status, 400);
    const longName = await api.app.request('/v1/check', upload(`${'n'.repeat(300)}.py`, 'x'));
    assert.equal(longName.status, 400);
  });

  it('answers 413 for bodies over the limit and 415 for other media and file types', async () => {
    const { api } = makeApi({ NBS_BODY_LIMIT: '2048' });
    const big = await api.app.request('/v1/check', json({ source: 'x = 1\n'.repeat(1000) }));
    assert.equal(big.status, 413);
    assert.equal((await errorOf(big)).code, 'NBS_INPUT_TOO_LARGE');
    const streamed = await api.app.request('/v1/check', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(`{"source": "${'y'.repeat(8192)}"}`));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    assert.equal(streamed.status, 413, 'a body without Content-Length is counted as it arrives');
    const plain = await api.app.request('/v1/check', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'print(1)' });
    assert.equal(plain.status, 415);
    assert.equal((await errorOf(plain)).code, 'NBS_MEDIA_TYPE_UNSUPPORTED');
    const text = await api.app.request('/v1/check', upload('notes.txt', 'print(1)'));
    assert.equal(text.status, 415);
    assert.equal((await errorOf(text)).code, 'NBS_INPUT_UNSUPPORTED_TYPE');
  });

  it('answers 422 for invalid notebooks and unknown policies', async () => {
    const { api } = makeApi();
    const v3 = readFileSync(join(NOTEBOOKS, 'v3.ipynb'), 'utf8');
    const old = await api.app.request('/v1/check', upload('test3.ipynb', v3));
    assert.equal(old.status, 422);
    assert.equal((await errorOf(old)).code, 'NBS_NOTEBOOK_UNSUPPORTED_VERSION');
    const notJson = await api.app.request('/v1/check', upload('broken.ipynb', '{ nope'));
    assert.equal(notJson.status, 422);
    assert.equal((await errorOf(notJson)).code, 'NBS_NOTEBOOK_INVALID_JSON');
    const unknown = await api.app.request('/v1/check', json({ source: 'x', policy: 'nope' }));
    assert.equal(unknown.status, 422);
    assert.equal((await errorOf(unknown)).code, 'NBS_POLICY_UNKNOWN');
  });

  it('requires an API key for runs when keys are configured, compared without leaking it', async () => {
    const { api, raw } = makeApi({ NBS_API_KEYS: `${API_KEY},another-key-0123456789` });
    const missing = await api.app.request('/v1/run', json({ source: '1' }));
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await errorOf(missing)).code, 'NBS_UNAUTHORIZED');
    const wrong = await api.app.request('/v1/run', json({ source: '1' }, { authorization: 'Bearer wrong-key-0123456789abcd' }));
    assert.equal(wrong.status, 401);
    const right = await api.app.request('/v1/run', json({ source: '1' }, { authorization: `Bearer ${API_KEY}` }));
    assert.equal(right.status, 200);
    assert.equal((await api.app.request('/v1/check', json({ source: '1' }))).status, 200, 'check is open unless configured');
    const guarded = makeApi({ NBS_API_KEYS: API_KEY, NBS_API_KEYS_FOR_CHECK: '1' });
    assert.equal((await guarded.api.app.request('/v1/check', json({ source: '1' }))).status, 401);
    assert.ok(!raw.join('').includes(API_KEY) && !raw.join('').includes('wrong-key'), 'keys never logged');
    assert.equal(raw.filter((line) => line.includes('"auth-failed"')).length, 2);
  });

  it('refuses cross-site form posts from browsers (403) and accepts same-origin ones', async () => {
    const { api } = makeApi();
    const crossSite = await api.app.request('http://localhost/v1/check', upload('a.py', 'x = 1', {}, { origin: 'https://evil.example' }));
    assert.equal(crossSite.status, 403);
    assert.equal((await errorOf(crossSite)).code, 'NBS_FORBIDDEN');
    const sameSite = await api.app.request('http://localhost/v1/check', upload('a.py', 'x = 1', {}, { origin: 'http://localhost' }));
    assert.equal(sameSite.status, 200);
  });

  it('answers 404 for unknown routes and policies, lists policies, and describes itself', async () => {
    const { api } = makeApi();
    const missing = await api.app.request('/nope');
    assert.equal(missing.status, 404);
    assert.equal((await errorOf(missing)).code, 'NBS_NOT_FOUND');
    assert.equal((await api.app.request('/v1/policies/nope')).status, 404);
    const list = (await (await api.app.request('/v1/policies')).json()) as { default: string; policies: { id: string; hash: string }[] };
    assert.equal(list.default, 'default');
    assert.deepEqual(list.policies.map((policy) => policy.id).sort(), ['default', 'permissive', 'strict']);
    const one = (await (await api.app.request('/v1/policies/strict')).json()) as { id: string; verdict: unknown };
    assert.equal(one.id, 'strict');
    const openapi = (await (await api.app.request('/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(openapi.openapi, '3.1.0');
    assert.ok(['/v1/check', '/v1/run', '/v1/policies', '/healthz', '/readyz'].every((path) => path in openapi.paths));
    const health = await api.app.request('/healthz');
    assert.deepEqual(await health.json(), { status: 'ok' });
  });

  it('answers 503 with Retry-After when the run queue is full, and /readyz shows the queue', async (t) => {
    // The queue is the sandbox's own, sized from the same variables as in the server.
    const small = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1, maxQueuedRuns: 0 });
    t.after(() => small.close());
    const { api } = makeApi({ NBS_MAX_RUNS: '1', NBS_MAX_QUEUED_RUNS: '0' }, { sandbox: small });
    const first = api.app.request('/v1/run', json({ source: 'import time\ntime.sleep(3)', timeoutMs: 10_000 }));
    let ready: { runs: { running: number; queued: number } } | undefined;
    for (let attempt = 0; attempt < 100; attempt += 1) {
      ready = (await (await api.app.request('/readyz')).json()) as { runs: { running: number; queued: number } };
      if (ready.runs.running + ready.runs.queued > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal((ready?.runs.running ?? 0) + (ready?.runs.queued ?? 0), 1);
    const pool = (await (await api.app.request('/readyz')).json()) as { sandboxes: { warm: number; running: number }; checkCache: { hits: number } };
    assert.equal(typeof pool.sandboxes.warm, 'number');
    assert.equal(typeof pool.checkCache.hits, 'number');
    const second = await api.app.request('/v1/run', json({ source: '1' }));
    assert.equal(second.status, 503);
    assert.equal(second.headers.get('retry-after'), '5');
    assert.equal((await errorOf(second)).code, 'NBS_BUSY');
    assert.equal((await first).status, 200);
  });

  it('answers a repeated JSON check body from its bytes, logs it like any check, and keys it by policy too', async () => {
    const { api, lines } = makeApi();
    const body = { source: `import os\nos.system("repeat-${Date.now()}")` };
    const first = await api.app.request('/v1/check', json(body));
    const second = await api.app.request('/v1/check', json(body));
    const firstText = await first.text();
    assert.equal(second.status, 200);
    assert.match(second.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(second.headers.get('cache-control'), 'no-store');
    assert.equal(await second.text(), firstText);
    const verdicts = lines.filter((line) => line.event === 'verdict');
    assert.equal(verdicts.length, 2, 'a hit is logged');
    assert.equal(verdicts[1]?.['cached'], true);
    assert.equal(verdicts[1]?.['verdict'], 'deny');
    assert.equal(lines.filter((line) => line.event === 'upload').length, 2);
    const ready = (await (await api.app.request('/readyz')).json()) as { answerCache: { hits: number } };
    assert.equal(ready.answerCache.hits, 1);
    const strict = (await (await api.app.request('/v1/check', json({ ...body, policy: 'strict' }))).json()) as { policy: { id: string } };
    assert.equal(strict.policy.id, 'strict', 'another policy is another answer');
    const invalid = await api.app.request('/v1/check', json({ source: 1 }));
    assert.equal(invalid.status, 400);
    assert.equal(invalid.headers.get('cache-control'), 'no-store', 'errors are not cacheable either');
    assert.equal((await api.app.request('/v1/check', json({ source: 1 }))).status, 400, 'a refused body is never kept');
  });

  it('answers /readyz 503 with a reason while sandbox processes keep failing to start', async () => {
    // A real pool whose runtime binary exits at once: every start-up fails.
    const broken = new Sandbox({ ...locateRuntime(), denoPath: '/bin/false' }, { warmProcesses: 1 }, undefined, { usable: false, reason: 'test' });
    try {
      const { api } = makeApi({}, { sandbox: broken });
      let response: Response | undefined;
      for (let attempt = 0; attempt < 200; attempt += 1) {
        response = await api.app.request('/readyz');
        if (response.status === 503) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(response?.status, 503);
      const body = (await response?.json()) as { ready: boolean; reason: string; sandboxes: { startFailuresInARow: number } };
      assert.equal(body.ready, false);
      assert.equal(body.reason, 'sandbox processes keep failing to start');
      assert.ok(body.sandboxes.startFailuresInARow >= 3);
      assert.equal((await makeApi().api.app.request('/readyz')).status, 200, 'a working pool is ready');
    } finally {
      await broken.close();
    }
  });

  it('serves Prometheus metrics: pool, queue, verdict cache and requests by route; off when configured so', async () => {
    const { api } = makeApi();
    await api.app.request('/healthz');
    await api.app.request('/v1/check', json({ source: `x = ${Date.now()}` }));
    const response = await api.app.request('/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    const stats = sandbox.stats();
    assert.equal(value('nbsandbox_sandbox_pool_size'), stats.poolSize);
    assert.equal(value('nbsandbox_sandbox_snapshot_start'), stats.startMode === 'snapshot' ? 1 : 0);
    assert.equal(value('nbsandbox_sandbox_processes_started_total'), stats.started);
    assert.ok(value('nbsandbox_check_cache_misses_total') >= 1);
    assert.match(text, /^nbsandbox_http_requests_total\{method="GET",route="\/healthz",status="200"\} 1$/m);
    assert.match(text, /^nbsandbox_http_requests_total\{method="POST",route="\/v1\/check",status="200"\} 1$/m);
    assert.match(text, /^nbsandbox_process_resident_memory_bytes \d+/m);
    const off = makeApi({ NBS_METRICS: 'false' });
    assert.equal((await off.api.app.request('/metrics')).status, 404);
  });

  it('fetches a notebook by URL only from configured hosts, through the guarded fetcher', async () => {
    const source: Server = createServer((request, response) => response.end(request.url === '/nb.py' ? 'print("fetched")' : 'x'));
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const port = (source.address() as { port: number }).port;
    try {
      const { api } = makeApi({}, { fetchHosts: ['127.0.0.1'] });
      const fetched = await api.app.request('/v1/check', json({ url: `http://127.0.0.1:${port}/nb.py` }));
      assert.equal(fetched.status, 200);
      const other = await api.app.request('/v1/check', json({ url: 'http://169.254.169.254/latest/meta-data/x.py' }));
      assert.equal(other.status, 422);
      assert.equal((await errorOf(other)).code, 'NBS_FETCH_REFUSED');
      const disabled = makeApi();
      assert.equal((await disabled.api.app.request('/v1/check', json({ url: `http://127.0.0.1:${port}/nb.py` }))).status, 422);
    } finally {
      source.close();
    }
  });

  it('logs exactly one request line per request, security events, and no secrets or notebook content', async () => {
    const { api, lines, raw } = makeApi({ NBS_API_KEYS: API_KEY });
    const requests: [string, RequestInit | undefined][] = [
      ['/healthz', undefined],
      ['/v1/check', json({ source: `x = "${SECRET_MARKER}"\npassword = "Tr0ub4dor&3-horse"` })],
      ['/v1/run', json({ source: `print("${SECRET_MARKER}")` }, { authorization: `Bearer ${API_KEY}` })],
      ['/v1/run', json({ source: '1' }, { authorization: 'Bearer not-the-key-0123456789', cookie: 'session=cookie-secret-55' })],
      ['/v1/check', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: SECRET_MARKER }],
      ['/missing', undefined],
    ];
    const ids: string[] = [];
    for (const [path, init] of requests) ids.push((await api.app.request(path, init)).headers.get('x-request-id') ?? '');
    const requestLines = lines.filter((line) => line.event === 'request');
    assert.deepEqual(requestLines.map((line) => line.requestId), ids, 'one request line per request, in order');
    assert.ok(requestLines.every((line) => typeof line.durationMs === 'number' && typeof line.status === 'number' && typeof line.client === 'string'));
    const events = lines.map((line) => line.event);
    for (const name of ['upload', 'verdict', 'run', 'auth-failed', 'validation-failed']) assert.ok(events.includes(name), name);
    const upload = lines.find((line) => line.event === 'upload');
    assert.match(String(upload?.sha256), /^[0-9a-f]{64}$/);
    const all = raw.join('');
    for (const secret of [SECRET_MARKER, API_KEY, 'not-the-key', 'cookie-secret-55', 'Tr0ub4dor']) assert.ok(!all.includes(secret), secret);
  });
});

describe('server configuration', () => {
  it('stops on a bad variable with a message naming it, never its value', () => {
    const cases: [string, string][] = [
      ['PORT', '70000'],
      ['NBS_BODY_LIMIT', 'lots'],
      ['REDIS_URL', 'http://secret-host-value'],
      ['NBS_API_KEYS', 'short-key'],
      ['NBS_TRUST_PROXY', 'not-an-address-value'],
      ['NBS_HSTS', 'maybe-secret-value'],
    ];
    for (const [name, value] of cases) {
      assert.throws(
        () => readConfig({ [name]: value }),
        (error: unknown) => {
          const message = String((error as Error).message);
          return (error as { code?: string }).code === 'NBS_CONFIG_INVALID' && message.includes(name) && !message.includes(value);
        },
        name,
      );
    }
    const defaults = readConfig({});
    assert.equal(defaults.port, 8080);
    assert.equal(defaults.host, '127.0.0.1');
    assert.equal(defaults.policy, 'default');
    assert.equal(defaults.redisUrl, null);
  });
});

describe('listening server', () => {
  it('shuts down gracefully: finishes the run in flight, refuses new connections, flushes the log', async () => {
    const lines: string[] = [];
    const server = await startServer(readConfig({ PORT: '0', NBS_RATE_LIMIT_CHECK: '0', NBS_RATE_LIMIT_RUN: '0', NBS_MAX_RUNS: '1' }), {
      stream: { write: (line: string) => void lines.push(line) },
    });
    const inFlight = fetch(`${server.url}/v1/run`, json({ source: 'import time\ntime.sleep(2)\nprint("finished")' }));
    for (let attempt = 0; attempt < 200 && server.api.inFlight() === 0; attempt += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.equal(server.api.inFlight(), 1);
    const closing = server.close();
    const response = await inFlight;
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { stdout: string }).stdout, 'finished\n');
    await closing;
    await assert.rejects(fetch(`${server.url}/healthz`), 'no new connections after close');
    assert.match(lines.at(-1) ?? '', /"event":"stopped"/);
    assert.ok(lines.some((line) => line.includes('"route":"/v1/run"') && line.includes('"status":200')));
  });
});
