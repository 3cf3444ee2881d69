/** Network rules, address classification and the guarded fetcher, against loopback servers only. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { NbsError } from '../dist/index.js';
import {
  compileNetRules,
  createGuardedFetcher,
  isPublicAddress,
  type GuardedFetcherOptions,
  type NetEvent,
  type NetOutcome,
  type NetRequest,
} from '../dist/sandbox/permissions/net.js';

// Names used by the tests. Nothing but 127.0.0.1 is ever connected to: every other address is
// refused before a connection is made, which is what these tests check.
const DNS: Readonly<Record<string, readonly string[]>> = {
  'allowed.test': ['127.0.0.1'],
  'other.test': ['127.0.0.1'],
  'evil.test': ['127.0.0.1'],
  'private.test': ['10.0.0.5'],
  'metadata.test': ['169.254.169.254'],
  'v6loop.test': ['::1'],
  'ula.test': ['fd00::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'cgnat.test': ['100.64.0.1'],
  'zero.test': ['0.0.0.0'],
  // Split answers pair a reachable address with a refused one, so that even a broken check
  // could only ever connect to the loopback server.
  'split.test': ['127.0.0.1', '10.0.0.5'],
  'split-reversed.test': ['169.254.169.254', '127.0.0.1'],
};

// A self-signed certificate for allowed.test (test only): the fetcher must not accept it.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7VfSVhnP79koFf6i
7fHEHqIFPqRR3ZLVFDwdWE2b6yKhRANCAASNo/S2nBSqWBPiA7yhu13J6bBbwiil
5otfUEoNKNjq6sO/NdxD96YxPV7CK/Vjh2GZoPdz8sojt9PyGByDxX6u
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBnjCCAUSgAwIBAgIUIqpSyFrggeJnCI1nHPACL2umEXcwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMYWxsb3dlZC50ZXN0MCAXDTI2MTEyOTAyMjkzMFoYDzIxMjYx
MTA1MDIyOTMwWjAXMRUwEwYDVQQDDAxhbGxvd2VkLnRlc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASNo/S2nBSqWBPiA7yhu13J6bBbwiil5otfUEoNKNjq6sO/
NdxD96YxPV7CK/Vjh2GZoPdz8sojt9PyGByDxX6uo2wwajAdBgNVHQ4EFgQUyItf
PvtYAOjRRj58hZa53CQH8DgwHwYDVR0jBBgwFoAUyItfPvtYAOjRRj58hZa53CQH
8DgwDwYDVR0TAQH/BAUwAwEB/zAXBgNVHREEEDAOggxhbGxvd2VkLnRlc3QwCgYI
KoZIzj0EAwIDSAAwRQIhAMFVzo7nFAfy596Inm2AxqOfhokVcw8B+W6ChgvrjaXs
AiBOD7/vGxAR6clrgs2/q3vDV8XF6ArtGWCmtbKekGow/Q==
-----END CERTIFICATE-----`;

const resolve = async (hostname: string) => {
  const addresses = DNS[hostname];
  if (!addresses) throw new Error('ENOTFOUND');
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

let server: Server;
let port = 0;
const hits = new Map<string, number>();

function handle(request: IncomingMessage, response: ServerResponse) {
  const url = new URL(request.url ?? '/', 'http://x');
  hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    switch (url.pathname) {
      case '/hello':
        response.writeHead(200, 'Fine', { 'x-test': 'yes', 'content-type': 'text/plain' }).end('hello');
        return;
      case '/echo':
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ method: request.method, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') }));
        return;
      case '/redirect':
        response.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' }).end('moved');
        return;
      case '/loop':
        response.writeHead(302, { location: '/loop' }).end();
        return;
      case '/big':
        response.writeHead(200);
        for (let index = 0; index < 10; index += 1) response.write(Buffer.alloc(500, 97));
        response.end();
        return;
      case '/big-declared':
        response.writeHead(200, { 'content-length': '5000' }).end(Buffer.alloc(5000, 97));
        return;
      case '/hang':
        return;
      default:
        response.writeHead(404).end();
    }
  });
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  port = (server.address() as AddressInfo).port;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function fetcher(allow: readonly string[], extra: Partial<GuardedFetcherOptions> = {}) {
  const events: NetEvent[] = [];
  const fetch = createGuardedFetcher({
    rules: compileNetRules({ allow, deny: ['evil.test'] }),
    allowAddresses: ['127.0.0.1'],
    resolve,
    timeoutMs: 3000,
    onEvent: (event) => events.push(event),
    ...extra,
  });
  return { fetch, events };
}

function ok(outcome: NetOutcome) {
  if (!outcome.ok) assert.fail(`expected a response, got ${outcome.reason}: ${outcome.message}`);
  return outcome.response;
}

function failed(outcome: NetOutcome, reason: string, message?: RegExp) {
  if (outcome.ok) assert.fail(`expected ${reason}, got status ${outcome.response.status}`);
  assert.equal(outcome.reason, reason, outcome.message);
  if (message) assert.match(outcome.message, message);
  return outcome;
}

const text = (body: Uint8Array) => Buffer.from(body).toString('utf8');
const echoed = (body: Uint8Array) => JSON.parse(text(body)) as { method: string; headers: Record<string, string>; body: string };

describe('compileNetRules', () => {
  it('lets deny win over allow and treats anything else as unlisted', () => {
    const rules = compileNetRules({ allow: ['*.test'], deny: ['evil.test'] });
    assert.equal(rules.decide('good.test', 80), 'allow');
    assert.equal(rules.decide('evil.test', 80), 'deny');
    assert.equal(rules.decide('example.com', 80), 'unlisted');
    assert.equal(compileNetRules({}).decide('example.com', 443), 'unlisted');
    assert.equal(compileNetRules({ allow: [] }).decide('example.com', 443), 'unlisted');
  });

  it('matches wildcards below the domain but not the apex', () => {
    const rules = compileNetRules({ allow: ['*.hf.co'] });
    assert.equal(rules.decide('cdn.hf.co', 443), 'allow');
    assert.equal(rules.decide('a.b.hf.co', 443), 'allow');
    assert.equal(rules.decide('hf.co', 443), 'unlisted');
    assert.equal(rules.decide('evilhf.co', 443), 'unlisted');
  });

  it('honours ports', () => {
    const rules = compileNetRules({ allow: ['example.com:443', '*.hf.co:443', '1.2.3.4:8080', '[2001:db8::1]:80', 'any.example'] });
    assert.equal(rules.decide('example.com', 443), 'allow');
    assert.equal(rules.decide('example.com', 80), 'unlisted');
    assert.equal(rules.decide('x.hf.co', 443), 'allow');
    assert.equal(rules.decide('x.hf.co', 80), 'unlisted');
    assert.equal(rules.decide('1.2.3.4', 8080), 'allow');
    assert.equal(rules.decide('1.2.3.4', 80), 'unlisted');
    assert.equal(rules.decide('[2001:db8::1]', 80), 'allow');
    assert.equal(rules.decide('2001:db8:0:0::1', 80), 'allow');
    assert.equal(rules.decide('any.example', 1), 'allow');
    assert.equal(rules.decide('any.example', 65535), 'allow');
    assert.equal(compileNetRules({ allow: ['a.example'], deny: ['a.example:22'] }).decide('a.example', 22), 'deny');
    assert.equal(compileNetRules({ allow: ['a.example'], deny: ['a.example:22'] }).decide('a.example', 80), 'allow');
  });

  it('ignores case and a trailing dot, and compares IDN and IP spellings as a URL does', () => {
    const rules = compileNetRules({ allow: ['Example.COM.', 'bücher.example', '127.0.0.1'], deny: ['*.Blocked.Example'] });
    assert.equal(rules.decide('EXAMPLE.com', 80), 'allow');
    assert.equal(rules.decide('example.com.', 80), 'allow');
    assert.equal(rules.decide('xn--bcher-kva.example', 80), 'allow');
    assert.equal(rules.decide('BÜCHER.example', 80), 'allow');
    assert.equal(rules.decide('2130706433', 80), 'allow');
    assert.equal(rules.decide('[::ffff:7f00:1]', 80), 'allow');
    assert.equal(compileNetRules({ allow: ['*.blocked.example'], deny: ['*.Blocked.Example'] }).decide('A.BLOCKED.EXAMPLE.', 80), 'deny');
  });

  it('rejects entries that are not hosts with NBS_OPTION_INVALID and a short message', () => {
    const long = `${'a'.repeat(200)}.example/${'secret'.repeat(10)}`;
    const garbage: unknown[] = [
      '', '*', '*.', '*.*.com', '*.1.2.3.4', 'http://example.com', 'example.com/path', 'user@example.com', 'a b.example',
      'example.com:', 'example.com:0', 'example.com:65536', 'example.com:http', ':80', '::1', '[::1', '[zz::1]', '[::1]x',
      'a..example', 'exa%41mple.com', '1.2.3.4.5', long, 42, null,
    ];
    for (const entry of garbage) {
      assert.throws(
        () => compileNetRules({ allow: [entry as string] }),
        (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID' && !error.message.includes('secret'),
        String(entry),
      );
    }
    assert.throws(() => compileNetRules({ deny: ['x/y'] }), NbsError);
    assert.throws(() => compileNetRules({ allow: Array.from({ length: 2000 }, () => 'a.example') }), NbsError);
  });
});

describe('isPublicAddress', () => {
  const table: readonly (readonly [string, boolean])[] = [
    ['8.8.8.8', true], ['93.184.216.34', true], ['172.15.255.255', true], ['172.32.0.1', true], ['100.63.255.255', true],
    ['100.128.0.1', true], ['2606:4700:4700::1111', true], ['::ffff:8.8.8.8', true], ['64:ff9b::808:808', true],
    ['10.0.0.5', false], ['172.16.0.1', false], ['172.31.255.255', false], ['192.168.1.1', false], ['127.0.0.1', false],
    ['127.1.2.3', false], ['::1', false], ['169.254.169.254', false], ['fe80::1', false], ['224.0.0.1', false],
    ['ff02::1', false], ['0.0.0.0', false], ['0.1.2.3', false], ['::', false], ['255.255.255.255', false],
    ['100.64.0.1', false], ['100.127.255.254', false], ['fc00::1', false], ['fd00::1', false], ['192.0.2.1', false],
    ['198.51.100.1', false], ['203.0.113.1', false], ['198.18.0.1', false], ['240.0.0.1', false], ['2001:db8::1', false],
    ['::ffff:127.0.0.1', false], ['::ffff:10.0.0.1', false], ['::ffff:169.254.169.254', false], ['64:ff9b::7f00:1', false],
    ['64:ff9b::a00:1', false], ['64:ff9b:1::808:808', false], ['2002:7f00:1::1', false], ['2002:808:808::1', false],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false], ['::7f00:1', false], ['fec0::1', false], ['fe80::1%eth0', false],
    ['not-an-ip', false], ['0177.0.0.1', false], ['2130706433', false], ['0x7f.1', false], ['', false],
  ];
  for (const [address, expected] of table) {
    it(`${address || '(empty)'} is ${expected ? 'public' : 'not public'}`, () => assert.equal(isPublicAddress(address), expected));
  }
});

describe('createGuardedFetcher', () => {
  const base = () => `http://allowed.test:${port}`;

  it('fetches from an allowed host and reports the decision', async () => {
    const { fetch, events } = fetcher(['allowed.test']);
    const response = ok(await fetch({ method: 'get', url: `${base()}/hello` }));
    assert.equal(response.status, 200);
    assert.equal(response.statusText, 'Fine');
    assert.equal(response.url, `${base()}/hello`);
    assert.equal(text(response.body), 'hello');
    assert.deepEqual(response.headers.find(([name]) => name.toLowerCase() === 'x-test'), ['x-test', 'yes']);
    assert.deepEqual(events, [{ kind: 'net', value: `allowed.test:${port}`, allowed: true }]);
  });

  it('sends a request body and passes headers, without hop-by-hop ones', async () => {
    const { fetch } = fetcher(['allowed.test'], { userAgent: 'nbsandbox-test' });
    const request: NetRequest = {
      method: 'POST',
      url: `${base()}/echo`,
      body: new TextEncoder().encode('payload'),
      headers: [
        ['X-Custom', 'one'], ['Content-Type', 'text/plain'], ['Host', 'evil.test'], ['Connection', 'keep-alive, x-custom'],
        ['Keep-Alive', 'timeout=5'], ['Proxy-Authorization', 'Basic secret'], ['Proxy-Connection', 'keep-alive'],
        ['Transfer-Encoding', 'chunked'], ['Upgrade', 'websocket'], ['TE', 'trailers'], ['Expect', '100-continue'],
        ['Content-Length', '999'], ['Accept-Encoding', 'gzip'],
      ],
    };
    const seen = echoed(ok(await fetch(request)).body);
    assert.equal(seen.method, 'POST');
    assert.equal(seen.body, 'payload');
    assert.equal(seen.headers['x-custom'], 'one');
    assert.equal(seen.headers['content-type'], 'text/plain');
    assert.equal(seen.headers.host, `allowed.test:${port}`);
    assert.equal(seen.headers['content-length'], '7');
    assert.equal(seen.headers['accept-encoding'], 'identity');
    assert.equal(seen.headers['user-agent'], 'nbsandbox-test');
    assert.equal(seen.headers.connection, 'close');
    for (const name of ['keep-alive', 'proxy-authorization', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'expect']) {
      assert.equal(seen.headers[name], undefined, name);
    }
    const withRecord = echoed(ok(await fetch({ method: 'PUT', url: `${base()}/echo`, headers: { 'User-Agent': 'mine' } })).body);
    assert.equal(withRecord.method, 'PUT');
    assert.equal(withRecord.headers['user-agent'], 'mine');
    assert.equal(withRecord.headers['content-length'], '0');
  });

  it('refuses unlisted and denied hosts before resolving them', async () => {
    const resolved: string[] = [];
    const { fetch, events } = fetcher(['*.test'], { resolve: async (name) => (resolved.push(name), resolve(name)) });
    const unlisted = failed(await fetch({ method: 'GET', url: `http://example.com:${port}/` }), 'denied', /^Requires net access to "example\.com:\d+"$/);
    assert.equal(unlisted.host, 'example.com');
    assert.equal(unlisted.port, port);
    failed(await fetch({ method: 'GET', url: `http://evil.test:${port}/` }), 'denied', /"evil\.test:\d+" refused: denied/);
    failed(await fetch({ method: 'GET', url: `http://EVIL.test.:${port}/` }), 'denied', /refused: denied/);
    failed(await fetch({ method: 'GET', url: `http://test:${port}/` }), 'denied', /Requires net access/);
    assert.deepEqual(resolved, []);
    assert.deepEqual(
      events.map((event) => event.allowed),
      [false, false, false, false],
    );
    ok(await fetch({ method: 'GET', url: `http://ALLOWED.Test.:${port}/hello` }));
  });

  it('honours port-specific entries', async () => {
    const { fetch } = fetcher([`allowed.test:${port}`]);
    ok(await fetch({ method: 'GET', url: `${base()}/hello` }));
    failed(await fetch({ method: 'GET', url: `http://allowed.test:${port === 1 ? 2 : port - 1}/hello` }), 'denied', /Requires net access/);
    failed(await fetch({ method: 'GET', url: 'http://allowed.test/hello' }), 'denied', /"allowed\.test:80"/);
  });

  it('refuses names that resolve to non-public addresses that are not allowed', async () => {
    const names = ['allowed.test', 'private.test', 'metadata.test', 'v6loop.test', 'ula.test', 'mapped.test', 'cgnat.test', 'zero.test'];
    const { fetch, events } = fetcher(names, { allowAddresses: [] });
    const expected: Readonly<Record<string, string>> = {
      'allowed.test': 'loopback', 'private.test': 'private', 'metadata.test': 'link-local', 'v6loop.test': 'loopback',
      'ula.test': 'unique-local', 'mapped.test': 'loopback', 'cgnat.test': 'carrier-grade NAT', 'zero.test': 'unspecified',
    };
    for (const name of names) {
      const outcome = failed(await fetch({ method: 'GET', url: `http://${name}:${port}/hello` }), 'denied');
      assert.equal(outcome.message, `net access to "${name}:${port}" refused: it resolves to a ${expected[name]} address`);
    }
    assert.ok(events.every((event) => !event.allowed && /address$/.test(event.reason ?? '')));
  });

  it('refuses a name when any of its addresses is neither public nor allowed', async () => {
    const { fetch } = fetcher(['split.test', 'split-reversed.test']);
    failed(await fetch({ method: 'GET', url: `http://split.test:${port}/hello` }), 'denied', /private address/);
    failed(await fetch({ method: 'GET', url: `http://split-reversed.test:${port}/hello` }), 'denied', /link-local address/);
  });

  it('reaches a non-public address only when that exact address is allowed', async () => {
    const { fetch } = fetcher(['mapped.test', 'v6loop.test'], { allowAddresses: ['::ffff:127.0.0.1', '::2'] });
    ok(await fetch({ method: 'GET', url: `http://mapped.test:${port}/hello` }));
    failed(await fetch({ method: 'GET', url: `http://v6loop.test:${port}/hello` }), 'denied', /loopback/);
    assert.throws(() => createGuardedFetcher({ rules: compileNetRules({}), allowAddresses: ['localhost'] }), NbsError);
    assert.throws(() => createGuardedFetcher({ rules: compileNetRules({}), allowAddresses: ['0177.0.0.1'] }), NbsError);
    assert.throws(() => createGuardedFetcher({ rules: compileNetRules({}), timeoutMs: 0 }), NbsError);
  });

  it('normalises IP literal spellings and refuses them when the address is not allowed', async () => {
    const literals = [
      `http://127.0.0.1:${port}/`, `http://2130706433:${port}/`, `http://0177.0.0.1:${port}/`, `http://0x7f000001:${port}/`,
      `http://0x7f.1:${port}/`, `http://[::1]:${port}/`, `http://[::ffff:7f00:1]:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`,
      'http://169.254.169.254/latest/meta-data',
    ];
    const byName = fetcher(['127.0.0.1', '[::1]', '169.254.169.254'], { allowAddresses: [] }).fetch;
    const unlisted = fetcher(['allowed.test'], { allowAddresses: [] }).fetch;
    for (const url of literals) {
      const refused = failed(await byName({ method: 'GET', url }), 'denied', /refused: (loopback|link-local) address$/);
      assert.match(refused.message, /^net access to "(127\.0\.0\.1|\[::1\]|169\.254\.169\.254):\d+"/, url);
      failed(await unlisted({ method: 'GET', url }), 'denied', /^Requires net access to "(127\.0\.0\.1|\[::1\]|169\.254\.169\.254):\d+"$/);
    }
    const reachable = fetcher(['127.0.0.1']).fetch;
    for (const url of literals.slice(0, 5)) assert.equal(text(ok(await reachable({ method: 'GET', url: `${url}hello` })).body), 'hello', url);
  });

  it('refuses other schemes, credentials in URLs and other methods', async () => {
    const { fetch, events } = fetcher(['allowed.test']);
    for (const url of ['file:///etc/passwd', 'ftp://allowed.test/x', 'data:text/plain,hi', 'javascript:alert(1)', 'ws://allowed.test/']) {
      failed(await fetch({ method: 'GET', url }), 'denied', /only http and https/);
    }
    for (const url of [`http://user:hunter2@allowed.test:${port}/hello`, `http://a@allowed.test:${port}/hello`]) {
      const outcome = failed(await fetch({ method: 'GET', url }), 'denied', /credentials/);
      assert.ok(!outcome.message.includes('hunter2') && !(outcome.url ?? '').includes('hunter2') && !(outcome.url ?? '').includes('a@'));
    }
    for (const method of ['CONNECT', 'TRACE', 'FOO']) failed(await fetch({ method, url: `${base()}/hello` }), 'denied', /method/);
    failed(await fetch({ method: 'GET', url: 'not a url' }), 'failed', /not valid/);
    failed(await fetch({ method: 'GET', url: `${base()}/hello`, headers: [['X-Bad', 'a\r\nInjected: 1']] }), 'failed', /header/);
    assert.equal(events.length, 10);
  });

  it('checks every redirect hop from scratch', async () => {
    const { fetch, events } = fetcher(['allowed.test', 'evil.test', 'private.test']);
    const toEvil = failed(await fetch({ method: 'GET', url: `${base()}/redirect?to=${encodeURIComponent(`http://evil.test:${port}/hello`)}` }), 'denied', /evil\.test/);
    assert.equal(toEvil.host, 'evil.test');
    assert.equal(toEvil.url, `http://evil.test:${port}/hello`);
    failed(await fetch({ method: 'GET', url: `${base()}/redirect?to=${encodeURIComponent(`http://private.test:${port}/hello`)}` }), 'denied', /private address/);
    failed(await fetch({ method: 'GET', url: `${base()}/redirect?to=${encodeURIComponent(`http://127.0.0.1:${port}/hello`)}` }), 'denied', /Requires net access/);
    failed(await fetch({ method: 'GET', url: `${base()}/redirect?to=${encodeURIComponent('file:///etc/passwd')}` }), 'denied', /only http/);
    assert.deepEqual(
      events.map((event) => event.allowed),
      [true, false, true, false, true, false, true, false],
    );
    const followed = ok(await fetch({ method: 'GET', url: `${base()}/redirect?status=301&to=/hello` }));
    assert.equal(text(followed.body), 'hello');
    assert.equal(followed.url, `${base()}/hello`);
  });

  it('stops after maxRedirects', async () => {
    hits.delete('/loop');
    const { fetch } = fetcher(['allowed.test'], { maxRedirects: 2 });
    failed(await fetch({ method: 'GET', url: `${base()}/loop` }), 'failed', /more than 2 redirects/);
    assert.equal(hits.get('/loop'), 3);
    failed(await fetcher(['allowed.test'], { maxRedirects: 0 }).fetch({ method: 'GET', url: `${base()}/loop` }), 'failed', /redirects/);
  });

  it('turns POST into GET on 303, 301 and 302, and keeps it on 307 and 308', async () => {
    const { fetch } = fetcher(['allowed.test']);
    const post = (status: number): NetRequest => ({
      method: 'POST',
      url: `${base()}/redirect?status=${status}&to=/echo`,
      headers: [['Content-Type', 'text/plain']],
      body: new TextEncoder().encode('data'),
    });
    for (const status of [301, 302, 303]) {
      const seen = echoed(ok(await fetch(post(status))).body);
      assert.deepEqual([seen.method, seen.body, seen.headers['content-type'], seen.headers['content-length']], ['GET', '', undefined, undefined], String(status));
    }
    for (const status of [307, 308]) {
      const seen = echoed(ok(await fetch(post(status))).body);
      assert.deepEqual([seen.method, seen.body, seen.headers['content-type']], ['POST', 'data', 'text/plain'], String(status));
    }
  });

  it('drops credentials when a redirect changes origin', async () => {
    const { fetch } = fetcher(['allowed.test', 'other.test']);
    const headers: [string, string][] = [['Authorization', 'Bearer secret'], ['Cookie', 'a=b'], ['X-Keep', '1']];
    const cross = echoed(ok(await fetch({ method: 'GET', url: `${base()}/redirect?to=${encodeURIComponent(`http://other.test:${port}/echo`)}`, headers })).body);
    assert.equal(cross.headers.authorization, undefined);
    assert.equal(cross.headers.cookie, undefined);
    assert.equal(cross.headers['x-keep'], '1');
    const same = echoed(ok(await fetch({ method: 'GET', url: `${base()}/redirect?to=/echo`, headers })).body);
    assert.equal(same.headers.authorization, 'Bearer secret');
    assert.equal(same.headers.cookie, 'a=b');
  });

  it('refuses responses and requests over their size limits', async () => {
    const { fetch } = fetcher(['allowed.test'], { maxResponseBytes: 1000, maxRequestBytes: 10 });
    failed(await fetch({ method: 'GET', url: `${base()}/big` }), 'too-large', /larger than 1000 bytes/);
    failed(await fetch({ method: 'GET', url: `${base()}/big-declared` }), 'too-large', /larger than 1000 bytes/);
    failed(await fetch({ method: 'POST', url: `${base()}/echo`, body: new Uint8Array(11) }), 'too-large', /request body/);
    assert.equal(text(ok(await fetch({ method: 'GET', url: `${base()}/hello` })).body), 'hello');
  });

  it('times out on a server or a resolver that never answers', async () => {
    const { fetch } = fetcher(['allowed.test', 'slow.test'], {
      timeoutMs: 200,
      resolve: (name) => (name === 'slow.test' ? new Promise(() => undefined) : resolve(name)),
    });
    const hang = failed(await fetch({ method: 'GET', url: `${base()}/hang` }), 'timeout', /200 ms/);
    assert.equal(hang.host, 'allowed.test');
    failed(await fetch({ method: 'GET', url: 'http://slow.test/' }), 'timeout');
  });

  it('connects to the address it checked, resolving each hop once', async () => {
    let calls = 0;
    const rebinding = async (name: string) => {
      calls += 1;
      const address = calls === 1 ? '127.0.0.1' : '10.0.0.5';
      return name === 'rebind.test' ? [{ address, family: 4 }] : resolve(name);
    };
    const { fetch } = fetcher(['rebind.test'], { resolve: rebinding });
    assert.equal(text(ok(await fetch({ method: 'GET', url: `http://rebind.test:${port}/hello` })).body), 'hello');
    assert.equal(calls, 1);
    failed(await fetch({ method: 'GET', url: `http://rebind.test:${port}/hello` }), 'denied', /private address/);
  });

  it('verifies TLS certificates against the host name and sends it as SNI', async () => {
    const servernames: string[] = [];
    const SNICallback = (name: string, done: (error: Error | null) => void) => {
      servernames.push(name);
      done(null);
    };
    const tls = createTlsServer({ key: TLS_KEY, cert: TLS_CERT, SNICallback }, (_request, response) => response.end('secret'));
    tls.on('tlsClientError', () => undefined);
    await new Promise<void>((done) => tls.listen(0, '127.0.0.1', done));
    const tlsPort = (tls.address() as AddressInfo).port;
    try {
      const { fetch } = fetcher(['allowed.test']);
      const outcome = failed(await fetch({ method: 'GET', url: `https://allowed.test:${tlsPort}/` }), 'failed', /TLS certificate not accepted/);
      assert.equal(outcome.port, tlsPort);
    } finally {
      tls.closeAllConnections();
      await new Promise<void>((done) => tls.close(() => done()));
    }
    assert.deepEqual(servernames, ['allowed.test']);
  });

  it('reports names that do not resolve and closed ports as failures', async () => {
    const { fetch } = fetcher(['nowhere.test', '127.0.0.1']);
    failed(await fetch({ method: 'GET', url: 'http://nowhere.test/' }), 'failed', /cannot resolve "nowhere\.test:80"/);
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((done) => closed.close(() => done()));
    failed(await fetch({ method: 'GET', url: `http://127.0.0.1:${closedPort}/` }), 'failed', /connection refused/);
  });
});
