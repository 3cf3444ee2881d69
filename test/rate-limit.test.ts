/**
 * Rate limits of the HTTP API, against the in-process memory store and against a real Redis:
 * per-client budgets per route group, the 429 answer and its headers, client keying (socket
 * address; X-Forwarded-For only from a trusted proxy), turning a limiter off, a budget shared by
 * two app instances through Redis, and the audit-log lines a refusal leaves.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createClient } from 'redis';
import { Checker, createSandbox, loadPolicy, type Policy, type Sandbox } from '../dist/index.js';
import { createApp, type Api, type AppDeps } from '../dist/server/app.js';
import { createAuditLog } from '../dist/server/audit-log.js';
import { readConfig } from '../dist/server/config.js';
import { clientAddress, clientHash } from '../dist/server/protection.js';
import { fallbackStore } from '../dist/server/fallback-store.js';
import { Hono } from 'hono';
import { redisStores } from '../dist/server/serve.js';
import { readWebAssets } from '../dist/server/web.js';

const REDIS_SERVER = '/usr/bin/redis-server';

interface LogLine {
  readonly event?: string;
  readonly requestId?: string;
  readonly status?: number;
  readonly client?: string;
  readonly route?: string;
  readonly [key: string]: unknown;
}

type Stores = NonNullable<AppDeps['stores']>;
/** The connection type serve.ts builds its stores over. */
type RedisConnection = Parameters<typeof redisStores>[0];

let checker: Checker;
let sandbox: Sandbox;
let policies: Map<string, Policy>;

interface Harness {
  readonly api: Api;
  readonly lines: LogLine[];
}

function makeApi(env: Record<string, string>, stores: Stores | undefined): Harness {
  const lines: LogLine[] = [];
  const log = createAuditLog({ stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } });
  const config = readConfig({ NBS_RATE_LIMIT_CHECK: '3', NBS_RATE_LIMIT_RUN: '2', NBS_RATE_LIMIT_OTHER: '5', ...env });
  const api = createApp({
    config,
    checker,
    sandbox,
    log,
    policies,
    defaultPolicy: 'default',
    ...(stores ? { stores } : {}),
    fetchNotebook: null,
    web: readWebAssets(),
  });
  return { api, lines };
}

/** What @hono/node-server passes as the env: getConnInfo reads `incoming.socket.remoteAddress`. */
const from = (remoteAddress: string) => ({ incoming: { socket: { remoteAddress } } });

const checkBody = (): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ source: 'import math\nprint(math.sqrt(2))\n', filename: 'ok.py' }),
});
const withHeaders = (init: RequestInit, headers: Record<string, string>): RequestInit => ({
  ...init,
  headers: { ...(init.headers as Record<string, string>), ...headers },
});

async function check(api: Api, address: string, headers: Record<string, string> = {}): Promise<Response> {
  return api.app.request('/v1/check', withHeaders(checkBody(), headers), from(address));
}
/** An empty POST to /v1/run: 415 when it gets past the limiter, 429 when it does not. */
async function run(api: Api, address: string, headers: Record<string, string> = {}): Promise<Response> {
  return api.app.request('/v1/run', { method: 'POST', headers }, from(address));
}

async function drain(response: Response): Promise<number> {
  await response.arrayBuffer();
  return response.status;
}

async function assertRateLimited(response: Response, limit: number): Promise<void> {
  assert.equal(response.status, 429);
  const body = (await response.json()) as { error: { code: string; message: string; requestId: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'requestId']);
  assert.equal(body.error.code, 'NBS_RATE_LIMITED');
  assert.ok(body.error.message.length > 0);
  assert.equal(body.error.requestId, response.headers.get('x-request-id'));
  const retryAfter = response.headers.get('retry-after') ?? '';
  assert.match(retryAfter, /^\d+$/, 'Retry-After is whole seconds');
  assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
  const rateLimit = /^limit=(\d+), remaining=(\d+), reset=(\d+)$/.exec(response.headers.get('ratelimit') ?? '');
  assert.ok(rateLimit, `RateLimit header: ${response.headers.get('ratelimit')}`);
  assert.equal(Number(rateLimit[1]), limit);
  assert.equal(Number(rateLimit[2]), 0);
  assert.ok(Number(rateLimit[3]) >= 1 && Number(rateLimit[3]) <= 60);
  assert.equal(response.headers.get('ratelimit-policy'), `${limit};w=60`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

before(async () => {
  checker = new Checker();
  await checker.warmUp();
  sandbox = await createSandbox({ warmProcesses: 0 });
  policies = new Map([['default', await loadPolicy('default')]]);
});
after(async () => {
  await sandbox.close();
  await checker.close();
});

/** The behaviour every store must give; `stores()` makes fresh stores for one app instance. */
function limiterSuite(name: string, stores: () => Stores | undefined, reset: () => Promise<void>): void {
  describe(`rate limits (${name} store)`, () => {
    beforeEach(reset);

    it('allows N checks per minute per client, then answers 429 with Retry-After and draft-7 headers', async () => {
      const { api } = makeApi({}, stores());
      for (let index = 0; index < 3; index += 1) {
        const response = await check(api, '203.0.113.7');
        assert.equal(response.status, 200, `request ${index + 1}`);
        assert.equal(((await response.json()) as { verdict: string }).verdict, 'allow');
        assert.match(response.headers.get('ratelimit') ?? '', new RegExp(`^limit=3, remaining=${2 - index}, reset=\\d+$`));
        assert.equal(response.headers.get('ratelimit-policy'), '3;w=60');
        assert.equal(response.headers.get('retry-after'), null, 'Retry-After only on 429');
      }
      await assertRateLimited(await check(api, '203.0.113.7'), 3);
      await assertRateLimited(await check(api, '203.0.113.7'), 3);
    });

    it('keeps separate budgets for /v1/check, /v1/run and the other routes', async () => {
      const { api } = makeApi({}, stores());
      const client = '198.51.100.20';
      for (let index = 0; index < 3; index += 1) assert.equal(await drain(await check(api, client)), 200);
      await assertRateLimited(await check(api, client), 3);
      // /v1/run still gets past its limiter (415 for the empty body), with its own count.
      const firstRun = await run(api, client);
      assert.equal(await drain(firstRun), 415);
      assert.match(firstRun.headers.get('ratelimit') ?? '', /^limit=2, remaining=1, reset=\d+$/);
      assert.equal(await drain(await run(api, client)), 415);
      await assertRateLimited(await run(api, client), 2);
      // GET routes have a budget of their own (NBS_RATE_LIMIT_OTHER).
      const health = await api.app.request('/healthz', {}, from(client));
      assert.equal(health.status, 200);
      assert.match(health.headers.get('ratelimit') ?? '', /^limit=5, remaining=4, reset=\d+$/);
      assert.equal(health.headers.get('ratelimit-policy'), '5;w=60');

      // And the other way round: exhausting run and the GET budget leaves check alone.
      const other = makeApi({}, stores()).api;
      const second = '198.51.100.21';
      for (let index = 0; index < 2; index += 1) assert.equal(await drain(await run(other, second)), 415);
      await assertRateLimited(await run(other, second), 2);
      for (let index = 0; index < 4; index += 1) assert.equal(await drain(await other.app.request('/healthz', {}, from(second))), 200, `GET ${index}`);
      assert.equal(await drain(await other.app.request('/v1/policies', {}, from(second))), 200);
      // One budget for all the other routes, /healthz and /v1/policies alike.
      await assertRateLimited(await other.app.request('/healthz', {}, from(second)), 5);
      await assertRateLimited(await other.app.request('/v1/policies', {}, from(second)), 5);
      const checked = await check(other, second);
      assert.equal(await drain(checked), 200);
      assert.match(checked.headers.get('ratelimit') ?? '', /^limit=3, remaining=2, reset=\d+$/);
    });

    it('keys clients by socket address and ignores X-Forwarded-For from untrusted sockets', async () => {
      const { api, lines } = makeApi({}, stores());
      for (let index = 0; index < 3; index += 1) assert.equal(await drain(await check(api, '203.0.113.7')), 200);
      await assertRateLimited(await check(api, '203.0.113.7'), 3);
      // A spoofed header from the same socket changes nothing.
      await assertRateLimited(await check(api, '203.0.113.7', { 'x-forwarded-for': '192.0.2.99' }), 3);
      await assertRateLimited(await check(api, '203.0.113.7', { 'x-forwarded-for': '192.0.2.99, 192.0.2.100' }), 3);
      // Another socket address has its own budget, whatever it claims to forward.
      assert.equal(await drain(await check(api, '203.0.113.8', { 'x-forwarded-for': '203.0.113.7' })), 200);
      assert.equal(await drain(await check(api, '2001:db8::1')), 200);
      const clients = new Set(lines.filter((line) => line.event === 'request').map((line) => line.client));
      assert.deepEqual(clients, new Set(['203.0.113.7', '203.0.113.8', '2001:db8::1'].map(clientHash)));
      assert.ok(!lines.some((line) => JSON.stringify(line).includes('203.0.113.7')), 'addresses are logged only as hashes');
    });

    it('behind a trusted proxy, the right-most untrusted X-Forwarded-For hop is the client', async () => {
      const { api, lines } = makeApi({ NBS_TRUST_PROXY: '10.0.0.1, 10.0.0.2' }, stores());
      const proxy = '10.0.0.1';
      for (let index = 0; index < 3; index += 1) assert.equal(await drain(await check(api, proxy, { 'x-forwarded-for': '198.51.100.1' })), 200);
      await assertRateLimited(await check(api, proxy, { 'x-forwarded-for': '198.51.100.1' }), 3);
      // The client cannot escape by prepending entries: the proxy appends the real address last.
      await assertRateLimited(await check(api, proxy, { 'x-forwarded-for': '192.0.2.50, 198.51.100.1' }), 3);
      await assertRateLimited(await check(api, proxy, { 'x-forwarded-for': '10.0.0.2, 192.0.2.51, 198.51.100.1' }), 3);
      // Nor by claiming to be one of our proxies: trusted hops on the right are skipped.
      await assertRateLimited(await check(api, proxy, { 'x-forwarded-for': '198.51.100.1, 10.0.0.2' }), 3);
      // Another client behind the same proxy has its own budget, as does the same client through the second proxy chain.
      const other = await check(api, proxy, { 'x-forwarded-for': '198.51.100.2' });
      assert.equal(await drain(other), 200);
      assert.match(other.headers.get('ratelimit') ?? '', /^limit=3, remaining=2, reset=\d+$/);
      assert.equal(await drain(await check(api, '10.0.0.2', { 'x-forwarded-for': '198.51.100.3, 10.0.0.1' })), 200);
      // A trusted proxy that forwards nothing is itself the client.
      assert.equal(await drain(await check(api, proxy)), 200);
      const requestClients = lines.filter((line) => line.event === 'request').map((line) => line.client);
      assert.equal(requestClients.filter((client) => client === clientHash('198.51.100.1')).length, 7);
      assert.equal(requestClients.filter((client) => client === clientHash('198.51.100.2')).length, 1);
      assert.equal(requestClients.filter((client) => client === clientHash('198.51.100.3')).length, 1);
      assert.equal(requestClients.filter((client) => client === clientHash(proxy)).length, 1);
      assert.equal(requestClients.filter((client) => client === clientHash('192.0.2.50')).length, 0);
    });

    it('NBS_RATE_LIMIT_CHECK=0 turns the check limiter off and leaves the run and other limiters on', async () => {
      const { api, lines } = makeApi({ NBS_RATE_LIMIT_CHECK: '0' }, stores());
      for (let index = 0; index < 25; index += 1) {
        const response = await check(api, '203.0.113.9');
        assert.equal(await drain(response), 200, `check ${index + 1}`);
        assert.equal(response.headers.get('ratelimit'), null);
      }
      assert.equal(await drain(await run(api, '203.0.113.9')), 415);
      assert.equal(await drain(await run(api, '203.0.113.9')), 415);
      await assertRateLimited(await run(api, '203.0.113.9'), 2);
      for (let index = 0; index < 5; index += 1) assert.equal(await drain(await api.app.request('/healthz', {}, from('203.0.113.9'))), 200);
      await assertRateLimited(await api.app.request('/healthz', {}, from('203.0.113.9')), 5);
      assert.equal(lines.filter((line) => line.event === 'rate-limited').length, 2);
      // And NBS_RATE_LIMIT_OTHER=0 turns off the limiter of the other routes only.
      const noOther = makeApi({ NBS_RATE_LIMIT_OTHER: '0' }, stores()).api;
      for (let index = 0; index < 20; index += 1) {
        const response = await noOther.app.request('/healthz', {}, from('203.0.113.9'));
        assert.equal(await drain(response), 200);
        assert.equal(response.headers.get('ratelimit'), null);
      }
      for (let index = 0; index < 3; index += 1) assert.equal(await drain(await check(noOther, '203.0.113.10')), 200);
      await assertRateLimited(await check(noOther, '203.0.113.10'), 3);
    });

    it('logs exactly one rate-limited event and one request line for each 429', async () => {
      const { api, lines } = makeApi({}, stores());
      const refused: string[] = [];
      for (let index = 0; index < 6; index += 1) {
        const response = await check(api, '192.0.2.77');
        if (response.status === 429) refused.push(response.headers.get('x-request-id') ?? '');
        await drain(response);
      }
      for (let index = 0; index < 4; index += 1) {
        const response = await run(api, '192.0.2.77');
        if (response.status === 429) refused.push(response.headers.get('x-request-id') ?? '');
        await drain(response);
      }
      assert.equal(refused.length, 3 + 2);
      assert.equal(new Set(refused).size, refused.length);
      const limitedLines = lines.filter((line) => line.event === 'rate-limited');
      assert.equal(limitedLines.length, refused.length);
      assert.equal(lines.filter((line) => line.status === 429).length, refused.length);
      for (const requestId of refused) {
        const mine = lines.filter((line) => line.requestId === requestId);
        assert.deepEqual(mine.map((line) => line.event), ['rate-limited', 'request'], requestId);
        const [event, request] = mine as [LogLine, LogLine];
        assert.equal(event.client, clientHash('192.0.2.77'));
        assert.equal(request.status, 429);
        assert.ok(request.route === '/v1/check' || request.route === '/v1/run');
        assert.equal(event.route, request.route);
      }
      assert.deepEqual(limitedLines.map((line) => line.route), ['/v1/check', '/v1/check', '/v1/check', '/v1/run', '/v1/run']);
      // Refused requests never reach the checker: no upload or verdict lines for them.
      assert.equal(lines.filter((line) => line.event === 'upload').length, 3);
      assert.equal(lines.filter((line) => line.event === 'verdict').length, 3);
    });
  });
}

limiterSuite('memory', () => undefined, async () => undefined);

describe('with Redis', { skip: existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} is not installed` }, () => {
  let server: ChildProcess | undefined;
  let url = '';
  const clients: RedisConnection[] = [];
  let admin: RedisConnection;
  /** The connection the instances of the common suite use (stores() is synchronous). */
  let shared: RedisConnection;

  const connect = async (): Promise<RedisConnection> => {
    const client: RedisConnection = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    clients.push(client);
    return client;
  };

  before(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    let output = '';
    server = spawn(REDIS_SERVER, ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('Ready to accept connections') || server?.exitCode !== null, 10_000, 'redis-server');
    assert.equal(server.exitCode, null, `redis-server exited: ${output}`);
    admin = await connect();
    shared = await connect();
  });
  after(async () => {
    for (const client of clients) await client.quit().catch(() => undefined);
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
  });

  limiterSuite('redis', () => redisStores(shared), async () => {
    await admin.flushAll();
  });

  describe('shared budget', () => {
    beforeEach(async () => {
      await admin.flushAll();
    });

    it('two app instances sharing one Redis hit 429 at the combined limit', async () => {
      const first = makeApi({}, redisStores(await connect()));
      const second = makeApi({}, redisStores(await connect()));
      const instances = [first, second, first];
      for (const [index, instance] of instances.entries()) {
        const response = await check(instance.api, '203.0.113.7');
        assert.equal(await drain(response), 200, `check ${index + 1}`);
        assert.match(response.headers.get('ratelimit') ?? '', new RegExp(`^limit=3, remaining=${2 - index}, reset=\\d+$`));
      }
      await assertRateLimited(await check(second.api, '203.0.113.7'), 3);
      await assertRateLimited(await check(first.api, '203.0.113.7'), 3);
      // Run budgets are shared too, and stay apart from the check budget.
      assert.equal(await drain(await run(second.api, '203.0.113.7')), 415);
      assert.equal(await drain(await run(first.api, '203.0.113.7')), 415);
      await assertRateLimited(await run(second.api, '203.0.113.7'), 2);
      // Another client is untouched on either instance.
      assert.equal(await drain(await check(second.api, '203.0.113.8')), 200);
      // Each instance logged only the refusals it made.
      assert.equal(first.lines.filter((line) => line.event === 'rate-limited').length, 1);
      assert.equal(second.lines.filter((line) => line.event === 'rate-limited').length, 2);
      // The counts live in Redis, one key per budget and client, expiring with the window.
      const checkKey = 'nbs:rl:check:check:203.0.113.7';
      assert.equal(await admin.get(checkKey), '5');
      assert.equal(await admin.get('nbs:rl:run:run:203.0.113.7'), '3');
      const ttl = await admin.pTTL(checkKey);
      assert.ok(ttl > 0 && ttl <= 60_000, `TTL ${ttl}`);
    });
  });
});

describe('rate-limit store fallback and address spelling', () => {
  it('serves counts from instance memory while the shared store fails or hangs, and reports it', async () => {
    let failures = 0;
    const broken = {
      increment: () => Promise.reject(new Error('redis down')),
      decrement: () => new Promise<void>(() => undefined),
      resetKey: () => Promise.reject(new Error('redis down')),
    };
    const store = fallbackStore(broken, () => (failures += 1));
    store.init?.({ windowMs: 60_000 } as never);
    // The memory store hands out its live record: read the count before the next increment.
    assert.equal((await store.increment('client')).totalHits, 1);
    assert.equal((await store.increment('client')).totalHits, 2);
    const startedAt = Date.now();
    await store.decrement('client');
    assert.ok(Date.now() - startedAt < 2000, 'a hanging shared store is given up on');
    assert.equal(failures, 3);
  });

  it('treats ::ffff:a.b.c.d as a.b.c.d when matching trusted proxies', async () => {
    const request = (env: { incoming: { socket: { remoteAddress: string } } }, forwardedFor: string) => {
      const app = new Hono<{ Variables: { client: string } }>();
      app.get('/', (c) => c.text(clientAddress(c, ['10.0.0.1'])));
      return app.request('/', { headers: { 'x-forwarded-for': forwardedFor } }, env);
    };
    assert.equal(await (await request({ incoming: { socket: { remoteAddress: '::ffff:10.0.0.1' } } }, '198.51.100.9')).text(), '198.51.100.9');
    assert.equal(await (await request({ incoming: { socket: { remoteAddress: '::ffff:10.0.0.2' } } }, '198.51.100.9')).text(), '10.0.0.2');
  });
});
