/**
 * Deno-style permissions against the real sandbox process (the broker's and the path rules'
 * decisions on their own are in net.test.ts and paths.test.ts): allow, deny, deny over allow,
 * traversal, symlinks, SSRF forms. All traffic stays on this machine: a loopback server and an injected
 * resolver that maps made-up names to chosen addresses.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSandbox, NbsError, type AuditEvent, type RunPermissions, type RunResult, type Sandbox } from '../dist/index.js';

const NAMES: Record<string, string[]> = {
  'allowed.test': ['127.0.0.1'],
  'private.test': ['10.0.0.5'],
  'metadata.test': ['169.254.169.254'],
};
const resolveHost = async (host: string): Promise<string[]> => {
  const addresses = NAMES[host];
  if (!addresses) throw new Error('unknown name');
  return addresses;
};

let server: Server;
let port = 0;

before(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (url.pathname === '/redirect') {
      response.writeHead(Number(url.searchParams.get('status') ?? 302), { location: url.searchParams.get('to') ?? '/' });
      response.end();
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
        'from pyodide.http import pyfetch, open_url',
        `response = await pyfetch("http://127.0.0.1:${port}/pyfetch", method="PUT", body="b")`,
        'print(response.status, await response.text())',
        attempt(`open_url("http://127.0.0.1:${port}/open").read()`),
        attempt('await pyfetch("http://example.com/")'),
      ].join('\n'),
      { net: { allow: ['127.0.0.1', '*.test'] } },
    );
    const [hello, post, unlisted, metadata, redirect, decimal, socket, fetched, opened, fetchDenied] = lines(result);
    assert.equal(hello, 'GET /hello ');
    assert.equal(post, 'POST /post body');
    assert.match(unlisted ?? '', /^PermissionError: Requires net access to "example.com:80"/);
    assert.match(metadata ?? '', /^PermissionError: net access to "metadata.test:80" refused: it resolves to a link-local address/);
    assert.match(redirect ?? '', /^PermissionError: net access to "private.test:80" refused: it resolves to a private address/);
    assert.equal(decimal, 'GET /decimal ');
    assert.doesNotMatch(socket ?? '', /socket object/, 'raw sockets stay closed whatever the net permission');
    assert.equal(fetched, '200 PUT /pyfetch b');
    assert.equal(opened, 'GET /open ');
    assert.match(fetchDenied ?? '', /^PermissionError: Requires net access to "example.com:80"/);
    assert.ok(events.some((event) => event.kind === 'net' && event.allowed && event.value === `127.0.0.1:${port}` && event.source === 'host'));
    assert.ok(events.some((event) => event.kind === 'net' && !event.allowed && event.value === 'example.com:80'));
  });

  it('reaches a granted non-public ip:port only on that port, whatever name leads to it', async () => {
    const other = createServer((_request, response) => response.end('the other port'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const otherPort = (other.address() as { port: number }).port;
    try {
      const { result } = await run(
        [
          'import urllib.request',
          attempt(`urllib.request.urlopen("http://allowed.test:${port}/granted", timeout=5).read().decode()`),
          attempt(`urllib.request.urlopen("http://allowed.test:${otherPort}/", timeout=5).read().decode()`),
          attempt(`urllib.request.urlopen("http://127.0.0.1:${otherPort}/", timeout=5).read().decode()`),
        ].join('\n'),
        { net: { allow: [`127.0.0.1:${port}`, '*.test'] } },
      );
      const [granted, byName, byAddress] = lines(result);
      assert.equal(granted, 'GET /granted ');
      assert.match(byName ?? '', /^PermissionError: net access to "allowed.test:\d+" refused: it resolves to a loopback address/);
      assert.match(byAddress ?? '', /^PermissionError: Requires net access to "127.0.0.1:\d+"/);
    } finally {
      other.close();
    }
  });

  it('aborts a brokered request when its run ends, instead of waiting for the remote', async () => {
    let closedAt = 0;
    const slow = createServer((request) => {
      // Never answers; notes when the host gives up the connection.
      request.socket.once('close', () => {
        closedAt = performance.now();
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const slowPort = (slow.address() as { port: number }).port;
    try {
      const result = await sandbox.run(`import urllib.request\nurllib.request.urlopen("http://127.0.0.1:${slowPort}/", timeout=60)`, {
        permissions: { net: { allow: [`127.0.0.1:${slowPort}`] } },
        timeoutMs: 1500,
      });
      const endedAt = performance.now();
      assert.equal(result.status, 'timeout');
      for (let waited = 0; closedAt === 0 && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(closedAt > 0 && closedAt - endedAt < 2000, 'the host closed the connection when the run ended');
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('refuses denied modules that the runtime itself had loaded already', async () => {
    const preloaded = ['json', 'inspect', 'gc', 'marshal', 'importlib', 'socket', 'subprocess', 'asyncio'];
    const { result, events } = await run(
      [`import sys\nprint(sorted(name for name in ${JSON.stringify(preloaded)} if name in sys.modules))`, ...preloaded.map((name) => attempt(`__import__("${name}") and "imported"`))].join('\n'),
      { import: { deny: preloaded } },
    );
    const [loaded, ...attempts] = lines(result);
    assert.equal(loaded, '[]', 'denied modules are gone from sys.modules');
    for (const [position, name] of preloaded.entries()) {
      assert.match(attempts[position] ?? '', new RegExp(`^PermissionError: Requires import access to "${name}"`), name);
      assert.ok(events.some((event) => event.kind === 'import' && !event.allowed && event.value === name), `audit event for ${name}`);
    }
  });

  it('rejects malformed permissions before a run starts', async () => {
    for (const permissions of [{ read: { allow: ['relative'] } }, { net: { allow: ['http://x/'] } }, { env: { allow: ['A-B'] } }, { import: { deny: ['a..b'] } }, { disk: {} }]) {
      await assert.rejects(sandbox.run('1', { permissions: permissions as RunPermissions }), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
    }
  });
});
