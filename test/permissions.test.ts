/**
 * Deno-style permissions: the broker's and the path rules' decisions on their own (fast), then
 * every kind against the real sandbox process: allow, deny, deny over allow, traversal,
 * symlinks, SSRF forms. All traffic stays on this machine: a loopback server and an injected
 * resolver that maps made-up names to chosen addresses.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSandbox, NbsError, type AuditEvent, type RunPermissions, type RunResult, type Sandbox } from '../dist/index.js';
import { createBroker, decideHost, isPublicAddress, netRules } from '../dist/sandbox/permissions/broker.js';
import { acceptWrittenFiles, collectReadGrants, decidePath, pathLists } from '../dist/sandbox/permissions/files.js';

const NAMES: Record<string, string[]> = {
  'allowed.test': ['127.0.0.1'],
  'private.test': ['10.0.0.5'],
  'metadata.test': ['169.254.169.254'],
  'v6loop.test': ['::1'],
  'ula.test': ['fd00::1'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'cgnat.test': ['100.64.0.1'],
  'zero.test': ['0.0.0.0'],
  'split.test': ['93.184.216.34', '127.0.0.1'],
  'public.test': ['93.184.216.34'],
};
const resolveHost = async (host: string): Promise<string[]> => {
  const addresses = NAMES[host];
  if (!addresses) throw new Error('unknown name');
  return addresses;
};

let server: Server;
let port = 0;
let lastHeaders: Record<string, string | string[] | undefined> = {};

before(async () => {
  server = createServer((request, response) => {
    lastHeaders = request.headers;
    const url = new URL(request.url ?? '/', 'http://x');
    if (url.pathname === '/redirect') {
      response.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' });
      response.end();
    } else if (url.pathname === '/big') {
      response.end(Buffer.alloc(4096, 120));
    } else if (url.pathname === '/hang') {
      // never answers
    } else {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => response.end(`${request.method} ${url.pathname} ${Buffer.concat(chunks).toString()}`));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

describe('net rules and the broker', () => {
  const broker = (allow: string[], deny: string[] = [], extra: { maxResponseBytes?: number; timeoutMs?: number } = {}) => {
    const events: { value: string; allowed: boolean }[] = [];
    const fetch = createBroker({
      rules: netRules({ allow, deny }),
      maxResponseBytes: extra.maxResponseBytes ?? 1 << 20,
      timeoutMs: extra.timeoutMs ?? 5000,
      resolve: resolveHost,
      onEvent: (event) => events.push(event),
    });
    return { fetch, events };
  };
  const get = (url: string) => ({ method: 'GET', url, headers: [] as [string, string][], body: new Uint8Array() });

  it('classifies addresses: only public unicast counts as public', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd00::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '192.0.2.1', 'ff02::1', '::7f00:1', 'not an ip']) {
      assert.equal(isPublicAddress(address), false, address);
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPublicAddress(address), true, address);
  });

  it('matches hosts with deny over allow, wildcards below the apex only, ports, case and trailing dots', () => {
    const rules = netRules({ allow: ['*.test', 'Example.COM.', 'api.example.org:443', '10.0.0.5'], deny: ['evil.test'] });
    assert.equal(decideHost(rules, 'a.test', 80), 'allow');
    assert.equal(decideHost(rules, 'evil.test', 80), 'deny');
    assert.equal(decideHost(rules, 'test', 80), 'unlisted');
    assert.equal(decideHost(rules, 'example.com', 8080), 'allow');
    assert.equal(decideHost(rules, 'api.example.org', 443), 'allow');
    assert.equal(decideHost(rules, 'api.example.org', 80), 'unlisted');
    assert.equal(decideHost(rules, 'notexample.com', 80), 'unlisted');
    assert.equal(decideHost(rules, '10.0.0.5', 80), 'allow');
    for (const bad of ['http://x', 'a b', '*.1.2.3.4', 'host:0', 'host:70000', '', '*']) {
      assert.throws(() => netRules({ allow: [bad] }), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID', bad);
    }
  });

  it('fetches from an allowed host and passes method, body and headers, minus hop-by-hop ones', async () => {
    const { fetch } = broker(['127.0.0.1']);
    const outcome = await fetch({
      method: 'POST',
      url: `http://127.0.0.1:${port}/echo`,
      headers: [['x-test', 'yes'], ['connection', 'upgrade'], ['proxy-authorization', 'x'], ['host', 'evil']],
      body: Buffer.from('payload'),
    });
    assert.ok(outcome.ok, JSON.stringify(outcome));
    assert.equal(Buffer.from(outcome.response.body).toString(), 'POST /echo payload');
    assert.equal(lastHeaders['x-test'], 'yes');
    assert.equal(lastHeaders['proxy-authorization'], undefined);
    assert.equal(lastHeaders['host'], `127.0.0.1:${port}`);
  });

  it('refuses unlisted and denied hosts before resolving them', async () => {
    const { fetch, events } = broker(['*.test'], ['private.test']);
    for (const url of ['http://example.com/', 'http://private.test/', 'http://test/']) {
      const outcome = await fetch(get(url));
      assert.ok(!outcome.ok && outcome.reason === 'denied', url);
      assert.match(outcome.message, /Requires net access/);
    }
    assert.ok(events.every((event) => !event.allowed));
  });

  it('refuses a listed name that resolves to a non-public address, and split answers', async () => {
    const { fetch } = broker(['*.test']);
    for (const name of ['allowed', 'private', 'metadata', 'v6loop', 'ula', 'mapped', 'cgnat', 'zero', 'split']) {
      const outcome = await fetch(get(`http://${name}.test:${port}/`));
      assert.ok(!outcome.ok && outcome.reason === 'denied', name);
      assert.match(outcome.message, /non-public address/);
    }
  });

  it('refuses every literal form of a loopback or metadata address unless that address is listed', async () => {
    const { fetch } = broker(['localhost', '*.test']);
    for (const host of ['127.0.0.1', '2130706433', '0177.0.0.1', '0x7f000001', '0x7f.1', '[::1]', '[::ffff:7f00:1]', '169.254.169.254', '[::ffff:169.254.169.254]']) {
      const outcome = await fetch(get(`http://${host}:${port}/latest/meta-data`));
      assert.ok(!outcome.ok && outcome.reason === 'denied', host);
    }
    const listed = broker(['127.0.0.1']);
    const outcome = await listed.fetch(get(`http://2130706433:${port}/decimal`));
    assert.ok(outcome.ok, 'the decimal form of a listed address is that address');
  });

  it('refuses schemes other than http and https, and URLs with credentials', async () => {
    const { fetch } = broker(['127.0.0.1']);
    for (const url of ['file:///etc/passwd', 'ftp://127.0.0.1/', 'data:text/plain,hi', 'javascript:alert(1)', `http://user:pass@127.0.0.1:${port}/`]) {
      const outcome = await fetch(get(url));
      assert.ok(!outcome.ok && outcome.reason === 'denied', url);
    }
  });

  it('checks every redirect hop: to an unlisted host, to a private address, and too many hops', async () => {
    const { fetch } = broker(['127.0.0.1', '*.test']);
    const to = (target: string, status = 302) => `http://127.0.0.1:${port}/redirect?status=${status}&to=${encodeURIComponent(target)}`;
    for (const target of ['http://example.com/', `http://private.test:${port}/`, `http://metadata.test/latest`]) {
      const outcome = await fetch(get(to(target)));
      assert.ok(!outcome.ok && outcome.reason === 'denied', target);
    }
    const ok = await fetch(get(to(`http://127.0.0.1:${port}/landed`)));
    assert.ok(ok.ok && Buffer.from(ok.response.body).toString() === 'GET /landed ');
    let url = `http://127.0.0.1:${port}/final`;
    for (let hop = 0; hop < 7; hop += 1) url = to(url);
    const loop = await fetch(get(url));
    assert.ok(!loop.ok && loop.reason === 'failed');
  });

  it('turns a POST into a GET after 303 and drops credentials across origins', async () => {
    const { fetch } = broker(['127.0.0.1', 'localhost']);
    const crossOrigin = `http://127.0.0.1:${port}/redirect?status=303&to=${encodeURIComponent(`http://127.0.0.1:${port}/after`)}`;
    const outcome = await fetch({ method: 'POST', url: crossOrigin, headers: [['authorization', 'Bearer t']], body: Buffer.from('data') });
    assert.ok(outcome.ok && Buffer.from(outcome.response.body).toString() === 'GET /after ');
    assert.equal(lastHeaders['authorization'], 'Bearer t', 'same origin keeps credentials');
    const other = await fetch({
      method: 'GET',
      url: `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://localhost:${port}/x`)}`,
      headers: [['authorization', 'Bearer t']],
      body: new Uint8Array(),
    });
    assert.ok(!other.ok, 'localhost resolves to loopback, which is not listed');
  });

  it('caps the response size and the time', async () => {
    const small = broker(['127.0.0.1'], [], { maxResponseBytes: 1000 });
    const big = await small.fetch(get(`http://127.0.0.1:${port}/big`));
    assert.ok(!big.ok && big.reason === 'too-large');
    const quick = broker(['127.0.0.1'], [], { timeoutMs: 300 });
    const hung = await quick.fetch(get(`http://127.0.0.1:${port}/hang`));
    assert.ok(!hung.ok && hung.reason === 'timeout');
  });
});

describe('path rules and read grants', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nbs-paths-'));
    mkdirSync(join(dir, 'data', 'private'), { recursive: true });
    mkdirSync(join(dir, 'database'));
    writeFileSync(join(dir, 'data', 'a.csv'), 'a');
    writeFileSync(join(dir, 'data', 'private', 'key'), 'k');
    writeFileSync(join(dir, 'database', 'x'), 'x');
    writeFileSync(join(dir, 'outside'), 'o');
    symlinkSync(join(dir, 'outside'), join(dir, 'data', 'link-out'));
    symlinkSync(join(dir, 'data', 'private', 'key'), join(dir, 'data', 'link-private'));
    symlinkSync(join(dir, 'data', 'a.csv'), join(dir, 'data', 'link-in'));
    symlinkSync(join(dir, 'data'), join(dir, 'data', 'loop'));
    symlinkSync(join(dir, 'data'), join(dir, 'alias'));
    try {
      execFileSync('mkfifo', [join(dir, 'data', 'fifo')]);
    } catch {
      // no mkfifo here: the FIFO case is then not exercised
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses prefix semantics with deny over allow and rejects malformed paths', () => {
    const lists = pathLists({ allow: ['/data/'], deny: ['/data/private'] }, 'read');
    assert.equal(decidePath(lists, '/data'), 'allow');
    assert.equal(decidePath(lists, '/data/x/y'), 'allow');
    assert.equal(decidePath(lists, '/database'), 'unlisted');
    assert.equal(decidePath(lists, '/data/private/key'), 'deny');
    assert.equal(decidePath(lists, '/data/../etc/passwd'), 'unlisted');
    assert.equal(decidePath(lists, '/data/x\0'), 'deny');
    assert.equal(decidePath(lists, 'data/x'), 'deny');
    assert.equal(decidePath(pathLists({ allow: ['/'], deny: ['/data'] }, 'read'), '/data/x'), 'deny');
    for (const bad of ['relative', '', '/a\0b']) {
      assert.throws(() => pathLists({ allow: [bad] }, 'read'), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
    }
  });

  it('copies granted files, follows symlinks only to granted places, skips FIFOs, survives loops', () => {
    const data = join(dir, 'data');
    const collected = collectReadGrants(pathLists({ allow: [data], deny: [join(data, 'private')] }, 'read'), { maxFiles: 100, maxBytes: 1 << 20 });
    const paths = collected.files.map((file) => file.path).sort();
    assert.deepEqual(paths, [join(data, 'a.csv'), join(data, 'link-in')]);
    const denied = collected.events.filter((event) => !event.allowed).map((event) => event.value);
    assert.ok(denied.includes(join(data, 'link-out')) && denied.includes(join(data, 'link-private')) && denied.includes(join(data, 'private')));
    const viaAlias = collectReadGrants(pathLists({ allow: [join(dir, 'alias')] }, 'read'), { maxFiles: 100, maxBytes: 1 << 20 });
    assert.ok(viaAlias.files.some((file) => file.path === join(dir, 'alias', 'a.csv')), 'a symlinked grant shows under its own name');
  });

  it('fails the run up front over the caps, and a missing grant is not an error', () => {
    const lists = pathLists({ allow: [join(dir, 'data')] }, 'read');
    for (const caps of [{ maxFiles: 1, maxBytes: 1 << 20 }, { maxFiles: 100, maxBytes: 1 }]) {
      assert.throws(() => collectReadGrants(lists, caps), (error: unknown) => error instanceof NbsError && error.code === 'NBS_PERMISSION_TOO_LARGE');
    }
    assert.equal(collectReadGrants(pathLists({ allow: [join(dir, 'missing')] }, 'read'), { maxFiles: 1, maxBytes: 1 }).files.length, 0);
  });

  it('keeps only written files the write permission covers, within the caps', () => {
    const lists = pathLists({ allow: ['/out'], deny: ['/out/secret'] }, 'write');
    const file = (path: string) => ({ path, bytes: Buffer.from('x') });
    const accepted = acceptWrittenFiles(lists, [file('/out/a'), file('/out/secret/b'), file('/etc/c'), file('/out/../etc/d'), file('/out/e'), file('/out/f')], { maxFiles: 2, maxBytes: 100 });
    assert.deepEqual(accepted.files.map((kept) => kept.path), ['/out/a', '/out/e']);
    assert.equal(accepted.truncated, true);
  });
});

describe('permissions in the real sandbox', () => {
  let sandbox: Sandbox;
  let dir: string;
  before(async () => {
    sandbox = await createSandbox({ warmProcesses: 2, maxConcurrentRuns: 2, resolveHost });
    dir = mkdtempSync(join(tmpdir(), 'nbs-grants-'));
    mkdirSync(join(dir, 'data', 'private'), { recursive: true });
    writeFileSync(join(dir, 'data', 'a.csv'), 'x,y\n1,2\n');
    writeFileSync(join(dir, 'data', 'private', 'key'), 'granted-by-nobody');
    writeFileSync(join(dir, 'outside'), 'outside-secret');
    symlinkSync(join(dir, 'outside'), join(dir, 'data', 'link'));
    process.env['NBS_GRANT_ONE'] = 'one';
    process.env['NBS_GRANT_TWO'] = 'two';
    process.env['NBS_SECRET_THREE'] = 'three';
  });
  after(async () => {
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (source: string, permissions: RunPermissions): Promise<{ result: RunResult; events: AuditEvent[] }> => {
    const events: AuditEvent[] = [];
    const result = await sandbox.run(source, { permissions, onAudit: (event) => events.push(event), timeoutMs: 30_000 });
    return { result, events };
  };
  const lines = (result: RunResult) => result.stdout.trim().split('\n');
  const attempt = (expression: string) =>
    `try:\n    print(${expression})\nexcept BaseException as error:\n    print(type(error).__name__ + ": " + str(error))`;

  it('shows granted files only, denies the rest with PermissionError, and collects written files', async () => {
    const data = join(dir, 'data');
    const { result, events } = await run(
      [
        attempt(`open(${JSON.stringify(join(data, 'a.csv'))}).read().splitlines()[1]`),
        attempt(`open(${JSON.stringify(join(data, 'private', 'key'))}).read()`),
        attempt(`open(${JSON.stringify(join(data, 'link'))}).read()`),
        attempt(`open(${JSON.stringify(join(data, '..', 'outside'))}).read()`),
        attempt(`open("/etc/passwd").read()`),
        attempt(`open(${JSON.stringify(join(data, 'new.txt'))}, "w").write("x")`),
        attempt(`open("/etc/evil", "w")`),
        'import os\nos.makedirs("/out/sub", exist_ok=True)\nopen("/out/sub/result.txt", "w").write("written")\nopen("/tmp/scratch", "w").write("scratch is fine")',
        attempt('open("/out/secret.txt", "w").write("no")'),
      ].join('\n'),
      { read: { allow: [data], deny: [join(data, 'private')] }, write: { allow: ['/out'], deny: ['/out/secret.txt'] } },
    );
    assert.equal(result.status, 'ok', JSON.stringify(result));
    const [granted, privateKey, link, traversal, passwd, readOnly, etc, outSecret] = lines(result);
    assert.equal(granted, '1,2');
    assert.match(privateKey ?? '', /^PermissionError: Requires read access to ".*private\/key"/);
    assert.match(link ?? '', /^PermissionError: Requires read access/);
    // The test directory is under /tmp, which inside the sandbox is the run's own scratch space:
    // a path there that was not copied in is simply absent.
    assert.match(traversal ?? '', /^(PermissionError: Requires read access to ".*\/outside"|FileNotFoundError)/);
    assert.match(passwd ?? '', /^PermissionError: Requires read access to "\/etc\/passwd"/);
    assert.match(readOnly ?? '', /^PermissionError: Requires write access/);
    assert.match(etc ?? '', /^PermissionError: Requires write access to "\/etc\/evil"/);
    assert.match(outSecret ?? '', /^PermissionError: Requires write access to "\/out\/secret.txt"/);
    assert.ok(!JSON.stringify(result).includes('outside-secret') && !JSON.stringify(result).includes('granted-by-nobody'));
    assert.deepEqual(result.files?.map((file) => [file.path, file.size, Buffer.from(file.data, 'base64').toString()]), [['/out/sub/result.txt', 7, 'written']]);
    const denied = events.filter((event) => !event.allowed).map((event) => `${event.source} ${event.kind} ${event.value}`);
    assert.ok(denied.includes(`host read ${join(data, 'private')}`), denied.join('\n'));
    assert.ok(denied.includes(`host read ${join(data, 'link')}`), denied.join('\n'));
    assert.ok(denied.includes('sandbox read /etc/passwd'), denied.join('\n'));
    assert.ok(denied.includes('sandbox write /etc/evil'), denied.join('\n'));
    assert.ok(events.some((event) => event.allowed && event.kind === 'write' && event.value === '/out/sub/result.txt' && event.source === 'host'));
    assert.ok(events.every((event) => event.runId === result.runId && !Number.isNaN(Date.parse(event.time))));
  });

  it('shows only granted environment variables, deny over allow', async () => {
    const { result, events } = await run('import os\nprint(sorted(k for k in os.environ if k.startswith("NBS_")))', {
      env: { allow: ['NBS_GRANT_*', 'NBS_SECRET_THREE'], deny: ['NBS_GRANT_TWO', 'NBS_SECRET_*'] },
    });
    assert.equal(result.stdout, "['NBS_GRANT_ONE']\n");
    assert.deepEqual(events.filter((event) => event.kind === 'env').map((event) => event.value), ['NBS_GRANT_ONE']);
    const none = await run('import os\nprint(sorted(k for k in os.environ if k.startswith("NBS_")))', {});
    assert.equal(none.result.stdout, '[]\n');
  });

  it('refuses denied modules through every import route, and keeps the standard library', async () => {
    const { result, events } = await run(
      [
        attempt('__import__("sqlite3")'),
        attempt('__import__("importlib").import_module("sqlite3.dbapi2")'),
        attempt('__import__("xml.dom", fromlist=["minidom"]) and "xml ok"'),
        attempt('__import__("json").dumps([1])'),
        attempt('__import__("not_installed_anywhere")'),
      ].join('\n'),
      { import: { deny: ['sqlite3', 'xml.dom'] } },
    );
    const [sqlite, submodule, xml, json, missing] = lines(result);
    assert.match(sqlite ?? '', /^PermissionError: Requires import access to "sqlite3"/);
    assert.match(submodule ?? '', /^PermissionError: Requires import access to "sqlite3/);
    assert.match(xml ?? '', /^PermissionError: Requires import access to "xml.dom"/);
    assert.equal(json, '[1]');
    assert.match(missing ?? '', /^ModuleNotFoundError/, 'a module that is not installed stays ModuleNotFoundError');
    assert.ok(events.some((event) => event.kind === 'import' && !event.allowed && event.value === 'sqlite3'));
  });

  it('fetches allowed hosts through the broker with urllib, and refuses the rest', async () => {
    const { result, events } = await run(
      [
        'import urllib.request, urllib.error',
        attempt(`urllib.request.urlopen("http://127.0.0.1:${port}/hello", timeout=5).read().decode()`),
        attempt(`urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:${port}/post", data=b"body", method="POST")).read().decode()`),
        attempt(`urllib.request.urlopen("http://example.com/")`),
        attempt(`urllib.request.urlopen("http://metadata.test/latest/meta-data")`),
        attempt(`urllib.request.urlopen("http://127.0.0.1:${port}/redirect?to=http%3A%2F%2Fprivate.test%2F")`),
        attempt(`urllib.request.urlopen("http://2130706433:${port}/decimal").read().decode()`),
        attempt(`__import__("socket").create_connection(("127.0.0.1", ${port}), timeout=2)`),
      ].join('\n'),
      { net: { allow: ['127.0.0.1', '*.test'] } },
    );
    const [hello, post, unlisted, metadata, redirect, decimal, socket] = lines(result);
    assert.equal(hello, 'GET /hello ');
    assert.equal(post, 'POST /post body');
    assert.match(unlisted ?? '', /^PermissionError: Requires net access to "example.com:80"/);
    assert.match(metadata ?? '', /^PermissionError: .*non-public address/);
    assert.match(redirect ?? '', /^PermissionError: .*non-public address/);
    assert.equal(decimal, 'GET /decimal ');
    assert.doesNotMatch(socket ?? '', /socket object/, 'raw sockets stay closed whatever the net permission');
    assert.ok(events.some((event) => event.kind === 'net' && event.allowed && event.value === `127.0.0.1:${port}` && event.source === 'host'));
    assert.ok(events.some((event) => event.kind === 'net' && !event.allowed && event.value === 'example.com:80'));
  });

  it('rejects malformed permissions before a run starts', async () => {
    for (const permissions of [{ read: { allow: ['relative'] } }, { net: { allow: ['http://x/'] } }, { env: { allow: ['A-B'] } }, { import: { deny: ['a..b'] } }, { disk: {} }]) {
      await assert.rejects(sandbox.run('1', { permissions: permissions as RunPermissions }), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
    }
  });
});
