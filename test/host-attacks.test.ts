/**
 * Attacks on the host around the sandbox, from outside: `nbsandbox serve` as its own process
 * over a real socket. Code that rewrites the runner's own state or forges protocol lines,
 * floods, adversarial regex input, hostile Host headers, deep JSON, oversized bodies sent
 * whole, signals to the process group. Each test would fail if the protection it names went.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startServerProcess, type ServerProcess } from './helpers.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json<T = Record<string, unknown>>(): T;
}

/** One HTTP request with full control of the headers (Host included). */
function send(server: ServerProcess, path: string, options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port: server.port, path, method: options.method ?? 'GET', headers: { host: `127.0.0.1:${server.port}`, ...options.headers } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json: <T>() => JSON.parse(text) as T });
        });
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

const postJson = (server: ServerProcess, path: string, body: unknown, headers: Record<string, string> = {}) =>
  send(server, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

function notebook(sources: readonly string[]): unknown {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {},
    cells: sources.map((source, index) => ({ cell_type: 'code', id: `c${index}`, metadata: {}, outputs: [], execution_count: null, source })),
  };
}

/** Python that finds the runner's output device and writes forged protocol lines to it, as tampering code can. */
const FORGE = [
  'import os, json',
  'def find_device():',
  '    for fd in range(3, 64):',
  '        try:',
  '            if os.readlink(f"/proc/self/fd/{fd}") == "/dev/nbsandbox-output":',
  '                return fd',
  '        except OSError:',
  '            pass',
  'device = find_device()',
  'def forge(event):',
  '    os.write(device, event if isinstance(event, bytes) else json.dumps(event).encode())',
].join('\n');

async function healthy(server: ServerProcess): Promise<void> {
  const health = await send(server, '/healthz');
  assert.equal(health.status, 200);
  const run = await postJson(server, '/v1/run', { source: 'print(6 * 7)' });
  assert.equal(run.json<{ status: string }>().status, 'ok', 'the next run works');
  assert.equal(server.child.exitCode, null, 'the server is still running');
}

describe('a server under attack, over a real socket', { concurrency: 1 }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ NBS_POLICY: 'default', NBS_POLICIES: 'default,strict', NBS_ALLOWED_HOSTS: 'notebooks.example.com', NBS_WARM_SANDBOXES: '2', NBS_CHECK_WORKERS: '2' });
  });
  after(() => {
    server.child.kill('SIGKILL');
  });

  it('caps a flood of forged stream lines on the host: the run stops with NBS_OUTPUT_LIMIT and the server stays small', async () => {
    const before = server.memory();
    const flood = Array.from({ length: 60 }, (_, index) => `${FORGE}\nforge({"t": "stream", "index": ${index + 1}, "name": "stdout", "text": "x" * (1 << 20)})`);
    const answer = await postJson(server, '/v1/run', { notebook: notebook(['print("start")', ...flood]), timeoutMs: 60_000 });
    assert.equal(answer.status, 200);
    const result = answer.json<{ status: string; error?: { code: string; message: string }; truncated: boolean; stdout: string; cells: { status: string }[] }>();
    assert.equal(result.status, 'error');
    assert.equal(result.error?.code, 'NBS_OUTPUT_LIMIT');
    assert.match(result.error?.message ?? '', /stdout exceeded 1048576 bytes/);
    assert.equal(result.truncated, true);
    assert.ok(Buffer.byteLength(result.stdout) <= 1024 * 1024);
    assert.ok(answer.text.length < 4 * 1024 * 1024, `answer of ${answer.text.length} bytes`);
    assert.equal(result.cells.filter((cell) => cell.status === 'skipped').length, 59, 'nothing ran after the first cell that went over');
    const afterwards = server.memory();
    // 60 MiB were sent; without host caps the server held gigabytes or died of it.
    assert.ok(afterwards.peakMb - before.rssMb < 250, `server grew from ${before.rssMb} to a peak of ${afterwards.peakMb} MiB`);
    await healthy(server);
  });

  it("holds the cap when code raises the runner's own limits through closures", async () => {
    const raise = [
      'import sys, inspect',
      'for value in inspect.getclosurevars(sys.stdout.write).globals.values():',
      '    if isinstance(value, dict) and "maxOutputBytes" in value:',
      '        value["maxOutputBytes"] = 10 ** 12',
      'for cell_globals in [inspect.getclosurevars(f).globals for f in inspect.getclosurevars(sys.stdout.write).globals.values() if inspect.isfunction(f)]:',
      '    for value in cell_globals.values():',
      '        if isinstance(value, dict) and "maxOutputBytes" in value:',
      '            value["maxOutputBytes"] = 10 ** 12',
    ].join('\n');
    const answer = await postJson(server, '/v1/run', { notebook: notebook([raise, ...Array.from({ length: 20 }, () => "print('x' * (1 << 20))")]), timeoutMs: 60_000 });
    const result = answer.json<{ status: string; error?: { code: string }; stdout: string }>();
    assert.equal(result.error?.code, 'NBS_OUTPUT_LIMIT');
    assert.ok(Buffer.byteLength(result.stdout) <= 1024 * 1024);
  });

  it('stops a run at 10,000 outputs however they are forged', async () => {
    const forged = `${FORGE}\nfor n in range(12000):\n    forge({"t": "output", "index": 0, "output": {"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": str(n)}, "metadata": {}}})`;
    const result = (await postJson(server, '/v1/run', { source: forged, timeoutMs: 60_000 })).json<{ status: string; error?: { code: string; message: string }; cells: { outputs: unknown[] }[] }>();
    assert.equal(result.error?.code, 'NBS_OUTPUT_LIMIT');
    assert.match(result.error?.message ?? '', /more than 10000 outputs/);
    assert.equal(result.cells[0]?.outputs.length, 10_000);
  });

  it('kills a sandbox that forges malformed or out-of-order protocol lines, and serves on', async () => {
    for (const forged of ['b"not json at all"', '{"t": "ready", "python": "3", "pyodide": "x", "startupMs": 1, "snapshot": True}', '{"t": "start", "index": 7}', '{"t": "stream", "index": 0, "name": "stdout", "text": ""}']) {
      const result = (await postJson(server, '/v1/run', { source: `print("before")\n${FORGE}\nforge(${forged})\nprint("after")` })).json<{ status: string; error?: { code: string }; stdout: string }>();
      assert.equal(result.status, 'killed', forged);
      assert.equal(result.error?.code, 'NBS_SANDBOX_PROTOCOL', forged);
      assert.match(result.stdout, /^before\n/, 'what came before is kept');
    }
    await healthy(server);
  });

  it('refuses a message of millions of values before validating it (no heap blow-up)', async () => {
    const before = server.memory();
    const source = `${FORGE}\nn = (6_000_000 - 40) // 3\nforge(b'{"t":"audit","events":[' + b'{},' * (n - 1) + b'{}]}')`;
    const result = (await postJson(server, '/v1/run', { source })).json<{ status: string; error?: { code: string } }>();
    assert.equal(result.status, 'killed');
    assert.equal(result.error?.code, 'NBS_SANDBOX_PROTOCOL');
    assert.ok(server.memory().peakMb - before.rssMb < 300, `server peaked at ${server.memory().peakMb} MiB`);
    await healthy(server);
  });

  it('answers a run that sent hundreds of thousands of stream lines, and frees its slot', async () => {
    for (const ending of ['', '\nforge(b"not json")']) {
      const source = `${FORGE}\nforge(b"\\n".join([b'{"t":"stream","index":0,"name":"stdout","text":"a"}'] * 200_000))${ending}\nprint("end")`;
      const answer = await postJson(server, '/v1/run', { source, timeoutMs: 60_000 });
      assert.equal(answer.status, 200);
      const result = answer.json<{ status: string; error?: { code: string } }>();
      assert.ok(['ok', 'killed'].includes(result.status), result.status);
    }
    const ready = (await send(server, '/readyz')).json<{ runs: { running: number; queued: number } }>();
    assert.deepEqual(ready.runs, { ...ready.runs, running: 0, queued: 0 });
    await healthy(server);
  });

  it('stops a flood of tiny valid messages after a bounded number, and forged audit events after 1000', async () => {
    const tiny = (await postJson(server, '/v1/run', { source: `${FORGE}\nwhile True:\n    forge(b"\\n".join([b'{"t":"stream","index":0,"name":"stdout","text":"a"}'] * 5000))`, timeoutMs: 60_000 })).json<{ status: string; error?: { code: string; message: string } }>();
    assert.equal(tiny.error?.code, 'NBS_SANDBOX_PROTOCOL');
    assert.match(tiny.error?.message ?? '', /more messages than a run can/);
    const event = '{"kind":"net","value":"forged","allowed":false}';
    const audit = (await postJson(server, '/v1/run', { source: `${FORGE}\nline = b'{"t":"audit","events":[' + b",".join([b'${event}'] * 1000) + b']}'\nfor _ in range(50):\n    forge(line)` })).json<{ runId: string }>();
    const denials = server.lines().filter((line) => line['event'] === 'permission-denied' && line['runId'] === audit.runId);
    assert.ok(denials.length <= 1001 && denials.length >= 1000, `${denials.length} audit lines for one run`);
  });

  it('counts what a run sends as it will be sent: control characters cannot make the answer six times the cap', async () => {
    const source = `${FORGE}\ntext = "\\x01" * 65536\nfor _ in range(255):\n    forge({"t": "output", "index": 0, "output": {"output_type": "execute_result", "execution_count": 1, "data": {"text/plain": text}, "metadata": {}}})`;
    const answer = await postJson(server, '/v1/run', { source, timeoutMs: 60_000 });
    const result = answer.json<{ error?: { code: string } }>();
    assert.equal(result.error?.code, 'NBS_OUTPUT_LIMIT');
    assert.ok(answer.text.length < 24 * 1024 * 1024, `an answer of ${answer.text.length} bytes for a 16 MiB cap`);
  });

  it('refuses a body of millions of unknown fields cheaply', async () => {
    const keys = Array.from({ length: 1_000_000 }, (_, n) => `"${n}":0`).join(',');
    const answer = await send(server, '/v1/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{${keys}}` });
    assert.equal(answer.status, 400);
    assert.equal(answer.json<{ error: { code: string } }>().error.code, 'NBS_REQUEST_INVALID');
  });

  it('kills a sandbox that says it is done in the middle of a cell', async () => {
    const result = (await postJson(server, '/v1/run', { notebook: notebook([`${FORGE}\nforge({"t": "done"})\nprint("still running")`, 'print("second")']) })).json<{ status: string; error?: { code: string } }>();
    assert.equal(result.status, 'killed');
    assert.equal(result.error?.code, 'NBS_SANDBOX_PROTOCOL');
  });

  it('checks adversarial input for the secret patterns in time linear in its size', async () => {
    const timed = async (text: string) => {
      const startedAt = performance.now();
      const answer = await postJson(server, '/v1/check', { source: `x = "${text}"\n` });
      assert.equal(answer.status, 200);
      return performance.now() - startedAt;
    };
    await timed('warm');
    const benign = Math.min(await timed('a'.repeat(60_000)), await timed('b'.repeat(60_000)));
    const hostile = await timed('sk-'.repeat(20_000));
    // Quadratic backtracking took ~300x a benign body of the same size (10 s against 32 ms).
    assert.ok(hostile < 10 * benign + 500, `hostile ${Math.round(hostile)} ms, benign ${Math.round(benign)} ms`);
  });

  it('lets requests name only the policies NBS_POLICIES allows (403 otherwise), and lists only those', async () => {
    const refused = await postJson(server, '/v1/check', { source: 'x = 1', policy: 'permissive' });
    assert.equal(refused.status, 403);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'NBS_POLICY_FORBIDDEN');
    const run = await postJson(server, '/v1/run', { source: 'x = 1', policy: 'permissive' });
    assert.equal(run.status, 403);
    const strict = await postJson(server, '/v1/check', { source: 'x = 1', policy: 'strict' });
    assert.equal(strict.status, 200);
    const listed = (await send(server, '/v1/policies')).json<{ policies: { id: string }[] }>();
    assert.deepEqual(listed.policies.map((policy) => policy.id).sort(), ['default', 'strict']);
    assert.equal((await send(server, '/v1/policies/permissive')).status, 404);
    assert.equal((await postJson(server, '/v1/check', { source: 'x = 1', policy: 'lenient' })).status, 422, 'an unknown policy stays unknown');
  });

  it('answers only to Host names it serves (DNS rebinding)', async () => {
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1:${server.port + 1}`, 'localhost.evil.example', 'localhost:1']) {
      const answer = await send(server, '/v1/policies', { headers: { host } });
      assert.equal(answer.status, 403, host);
      assert.equal(answer.json<{ error: { code: string } }>().error.code, 'NBS_HOST_NOT_ALLOWED', host);
    }
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`, 'LOCALHOST', 'notebooks.example.com', 'notebooks.example.com:443']) {
      assert.equal((await send(server, '/v1/policies', { headers: { host } })).status, 200, host);
    }
    assert.ok(server.lines().some((line) => line['event'] === 'host-refused'));
  });

  it('answers deeply nested JSON with 400 or 422 and a stable code, not a 500', async () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const body = await send(server, '/v1/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"source": "x", "extra": ${deep}}` });
    assert.equal(body.status, 400);
    assert.equal(body.json<{ error: { code: string } }>().error.code, 'NBS_REQUEST_INVALID');
    const boundary = 'nbsboundary';
    const upload = [`--${boundary}`, 'Content-Disposition: form-data; name="file"; filename="deep.ipynb"', 'Content-Type: application/json', '', `{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": ${deep}}, "cells": []}`, `--${boundary}--`, ''].join('\r\n');
    const file = await send(server, '/v1/check', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: upload });
    assert.equal(file.status, 422);
    assert.equal(file.json<{ error: { code: string } }>().error.code, 'NBS_NOTEBOOK_INVALID');
    assert.ok(!server.lines().some((line) => line['event'] === 'server-error'), 'no request ended in a server error');
  });

  it('answers 413 to a client that sends a whole 40 MiB body before reading, and closes cleanly', async () => {
    const size = 40 * 1024 * 1024;
    const outcome = await new Promise<{ response: string; error: string | null }>((resolve) => {
      const socket = connect(server.port, '127.0.0.1');
      let response = '';
      let error: string | null = null;
      socket.on('data', (chunk: Buffer) => {
        response += chunk.toString('latin1');
      });
      socket.on('error', (failure: NodeJS.ErrnoException) => {
        error = failure.code ?? 'error';
      });
      socket.on('close', () => resolve({ response, error }));
      // As Python's urllib does: ask to close, send everything, only then read.
      socket.write(`POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`);
      const chunk = Buffer.alloc(1024 * 1024, 'x');
      let sent = 0;
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    assert.equal(outcome.error, null, 'no reset while sending');
    assert.match(outcome.response, /^HTTP\/1\.1 413 /);
    assert.match(outcome.response, /"code":"NBS_INPUT_TOO_LARGE"/);
  });
});

describe('connections', () => {
  it('accepts at most NBS_MAX_CONNECTIONS at once and serves again once they go', { timeout: 60_000 }, async () => {
    const server = await startServerProcess({ NBS_MAX_CONNECTIONS: '4', NBS_WARM_SANDBOXES: '0' });
    try {
      const idle = await Promise.all(Array.from({ length: 4 }, () => new Promise<import('node:net').Socket>((resolve) => {
        const socket = connect(server.port, '127.0.0.1', () => resolve(socket));
        socket.on('error', () => undefined);
      })));
      const refused = await new Promise<boolean>((resolve) => {
        const socket = connect(server.port, '127.0.0.1');
        socket.on('error', () => resolve(true));
        socket.on('close', () => resolve(true));
        socket.setTimeout(3000, () => resolve(false));
        socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`);
        socket.on('data', () => resolve(false));
      });
      assert.ok(refused, 'a fifth connection is not served');
      for (const socket of idle) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal((await send(server, '/healthz')).status, 200);
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});

describe('answers a client does not read', () => {
  it('count against NBS_RESPONSE_BUFFER_LIMIT: runs get 503 until they are delivered or dropped', { timeout: 60_000 }, async () => {
    const server = await startServerProcess({ NBS_RESPONSE_BUFFER_LIMIT: String(1024 * 1024), NBS_MAX_RUNS: '2', NBS_WARM_SANDBOXES: '2' });
    try {
      // Sends a run whose answer is 2 MiB and never reads it.
      const body = JSON.stringify({ source: 'print("x" * 1000000)\nimport sys\nsys.stderr.write("y" * 1000000)' });
      const stalled = connect(server.port, '127.0.0.1');
      stalled.on('error', () => undefined);
      await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
      stalled.pause();
      stalled.write(`POST /v1/run HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      let refused: Answer | undefined;
      for (let attempt = 0; attempt < 100 && !refused; attempt += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const answer = await postJson(server, '/v1/run', { source: 'print(1)' });
        if (answer.status === 503) refused = answer;
      }
      assert.equal(refused?.json<{ error: { code: string } }>().error.code, 'NBS_BUSY', 'runs are refused while an undelivered answer holds the budget');
      assert.equal(refused?.headers['retry-after'], '5');
      stalled.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await postJson(server, '/v1/run', { source: 'print(1)' })).json<{ status: string }>().status, 'ok');
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});

describe('a check that times out or retires its worker', () => {
  it('loses no queued check and no run slot: later runs, readiness and shutdown are unaffected', { timeout: 120_000 }, async () => {
    const server = await startServerProcess({ NBS_CHECK_WORKERS: '1', NBS_CHECK_TIMEOUT_MS: '1000', NBS_MAX_RUNS: '1', NBS_MAX_QUEUED_RUNS: '2', NBS_SHUTDOWN_GRACE_MS: '20000' });
    try {
      // About 4 s of checker work: far past the 1 s budget, so its worker is replaced.
      const slow = Array.from({ length: 20_000 }, (_, line) => `v${line} = [x * ${line} for x in range(3) if x]`).join('\n');
      const [check, run] = await Promise.all([
        postJson(server, '/v1/check', { source: slow }),
        (async () => {
          await new Promise((resolve) => setTimeout(resolve, 200));
          return postJson(server, '/v1/run', { source: 'print("queued behind the slow check")' });
        })(),
      ]);
      assert.equal(check.status, 200);
      assert.ok(check.json<{ findings: { ruleId: string }[] }>().findings.some((finding) => finding.ruleId === 'NBS-PARSE-001'), 'the slow check fails closed');
      assert.equal(run.json<{ status: string }>().status, 'ok', 'the check queued behind it was answered');
      for (let attempt = 0; attempt < 3; attempt += 1) assert.equal((await postJson(server, '/v1/run', { source: 'print(1)' })).json<{ status: string }>().status, 'ok');
      const ready = await send(server, '/readyz');
      assert.equal(ready.status, 200);
      assert.deepEqual(ready.json<{ runs: { running: number; queued: number } }>().runs.running, 0);
      const stoppedAt = performance.now();
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
      assert.ok(performance.now() - stoppedAt < 10_000, 'shutdown does not wait out its grace for a lost run');
    } finally {
      server.child.kill('SIGKILL');
    }
  });
});

/** Process ids whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        return Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('signals', { skip: existsSync('/proc/self/stat') ? false : 'needs /proc' }, () => {
  it('finishes runs in flight when SIGTERM reaches the whole process group', { timeout: 120_000 }, async () => {
    const server = await startServerProcess({ NBS_MAX_RUNS: '2', NBS_WARM_SANDBOXES: '2', NBS_SHUTDOWN_GRACE_MS: '20000' }, { detached: true });
    try {
      const runs = [0, 1].map(() => postJson(server, '/v1/run', { source: 'import time\ntime.sleep(3)\nprint("finished")' }));
      for (let attempt = 0; attempt < 200; attempt += 1) {
        const ready = (await send(server, '/readyz')).json<{ runs: { running: number } }>();
        if (ready.runs.running === 2) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // As systemd (KillMode=control-group) or Ctrl-C in a terminal do: the whole group at once.
      process.kill(-(server.child.pid ?? 0), 'SIGTERM');
      const results = await Promise.all(runs);
      for (const result of results) {
        assert.equal(result.json<{ status: string; stdout: string }>().status, 'ok');
        assert.equal(result.json<{ stdout: string }>().stdout, 'finished\n');
      }
      assert.equal(await server.exited, 0);
    } finally {
      server.child.kill('SIGKILL');
    }
  });

  it('leaves no sandbox process behind when the host is killed with SIGKILL', { timeout: 60_000 }, async () => {
    const server = await startServerProcess({ NBS_WARM_SANDBOXES: '2' });
    const pid = server.child.pid ?? 0;
    const running = postJson(server, '/v1/run', { source: 'import time\ntime.sleep(30)' }).catch(() => null);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const sandboxes = childrenOf(pid);
    assert.ok(sandboxes.length >= 2, `${sandboxes.length} sandbox processes`);
    server.child.kill('SIGKILL');
    await server.exited;
    await running;
    let alive = sandboxes;
    for (let waited = 0; alive.length > 0 && waited < 10_000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      alive = alive.filter((child) => existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'utf8').split(') ')[1]?.startsWith('Z'));
    }
    assert.deepEqual(alive, [], 'every sandbox of the killed host exited');
  });
});
