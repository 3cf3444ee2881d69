/** Runaway code of every kind ends with the right status, and the host process survives it. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Sandbox } from '../dist/index.js';
import { sharedSandbox } from './helpers.js';

describe('guards', { concurrency: 2 }, () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await sharedSandbox();
  });
  after(() => sandbox.close());

  const runaways: [string, string][] = [
    ['a pure-Python loop', 'while True:\n    pass'],
    ['a C loop that ignores interrupts', 'sum(range(10**13))'],
    ['time.sleep', 'import time\ntime.sleep(100)'],
    ['code that swallows KeyboardInterrupt', 'while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n        pass'],
    ['code that ignores SIGINT', 'import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass'],
    ['a huge power', '7 ** (10 ** 9)'],
  ];
  for (const [label, source] of runaways) {
    it(`times out ${label}`, async () => {
      const result = await sandbox.run(source, { timeoutMs: 1000 });
      assert.equal(result.status, 'timeout');
      assert.equal(result.error?.code, 'NBS_TIMEOUT');
      assert.ok(result.durationMs < 1000 + 5000, `took ${result.durationMs} ms`);
    });
  }

  it('keeps the outputs of cells that finished before a timeout', async () => {
    const result = await sandbox.run({ cells: [{ source: 'print("first")' }, { source: 'while True: pass' }, { source: 'print("never")' }] }, { timeoutMs: 1000 });
    assert.equal(result.status, 'timeout');
    assert.deepEqual(result.cells.map((cell) => cell.status), ['ok', 'error', 'skipped']);
    assert.equal(result.stdout, 'first\n');
  });

  it('turns heap exhaustion into MemoryError and status memory', async () => {
    const result = await sandbox.run('chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))', { memoryMb: 128, timeoutMs: 20_000 });
    assert.equal(result.status, 'memory');
    const error = result.cells[0]?.outputs.find((output) => output.output_type === 'error');
    assert.equal(error?.output_type === 'error' && error.ename, 'MemoryError');
  });

  it('lets code recover from a MemoryError it catches', async () => {
    const result = await sandbox.run(
      'try:\n    x = bytearray(900 * 1024 * 1024)\nexcept MemoryError:\n    print("recovered")\nlen(bytearray(1024))',
      { memoryMb: 128 },
    );
    assert.equal(result.status, 'ok');
    assert.equal(result.stdout, 'recovered\n');
  });

  it('ends deep recursion as RecursionError', async () => {
    const result = await sandbox.run('def f(n):\n    return f(n + 1)\nf(0)');
    assert.equal(result.status, 'error');
    const error = result.cells[0]?.outputs[0];
    assert.equal(error?.output_type === 'error' && error.ename, 'RecursionError');
    assert.ok(error?.output_type === 'error' && error.traceback.some((line) => line.includes('Previous line repeated')));
  });

  it('ends a stack overflow past the recursion limit with a clean status', async () => {
    // Unwinding a deep wasm stack takes ~20 s on this machine: the deadline leaves room for load.
    const result = await sandbox.run('import sys\nsys.setrecursionlimit(10**6)\ndef f(n):\n    return f(n + 1)\nf(0)', { timeoutMs: 120_000 });
    assert.ok(['killed', 'error'].includes(result.status), result.status);
    if (result.status === 'killed') assert.equal(result.error?.code, 'NBS_SANDBOX_CRASHED');
  });

  it('stops output floods at the cap', async () => {
    const result = await sandbox.run('while True:\n    print("x" * 1000)', { maxOutputBytes: 64 * 1024, timeoutMs: 10_000 });
    assert.equal(result.status, 'error');
    assert.equal(result.truncated, true);
    assert.ok(Buffer.byteLength(result.stdout) <= 64 * 1024);
    const error = result.cells[0]?.outputs.at(-1);
    assert.equal(error?.output_type === 'error' && error.ename, 'OutputLimitExceeded');
  });

  it('caps output written straight to the file descriptor', async () => {
    const result = await sandbox.run('import os\nfor _ in range(10000):\n    os.write(1, b"y" * 1000)', { maxOutputBytes: 8 * 1024 });
    assert.equal(result.truncated, true);
    assert.ok(Buffer.byteLength(result.stdout) <= 8 * 1024, `${Buffer.byteLength(result.stdout)}`);
  });

  it('caps the representation of a huge result', async () => {
    const result = await sandbox.run('"z" * (10 ** 7)', { maxResultBytes: 1024 });
    assert.equal(result.status, 'ok');
    assert.equal(result.truncated, true);
    const output = result.cells[0]?.outputs[0];
    assert.ok(output?.output_type === 'execute_result' && output.data['text/plain'].length <= 1025);
  });

  it('keeps a traceback within two result caps', async () => {
    const result = await sandbox.run(`line = 'x' * 5000\ndef f(n):\n    if n == 0: raise ValueError(line)\n    f(n - 1)  # ${'y'.repeat(3000)}\nf(50)`, { maxResultBytes: 1024 });
    const error = result.cells[0]?.outputs[0];
    assert.ok(error?.output_type === 'error', JSON.stringify(error));
    assert.ok(error.traceback.join('').length <= 2 * 1024, `${error.traceback.join('').length}`);
    assert.equal(error.traceback[0], 'Traceback (most recent call last):\n');
    assert.match(error.traceback.at(-1) ?? '', /^ValueError: x+/);
  });

  it('keeps what the running cell had printed when the run times out', async () => {
    const result = await sandbox.run({ cells: [{ source: 'print("done")' }, { source: 'import time\nprint("partial", flush=True)\ntime.sleep(60)' }] }, { timeoutMs: 1500 });
    assert.equal(result.status, 'timeout');
    assert.deepEqual(result.cells.map((cell) => cell.status), ['ok', 'interrupted']);
    assert.equal(result.stdout, 'done\npartial\n');
    assert.deepEqual(result.cells[1]?.outputs, [{ output_type: 'stream', name: 'stdout', text: 'partial\n' }]);
  });

  it('ends a run that runs out of memory in one allocation as memory, like one that runs out gradually', async () => {
    for (const source of ['x = bytearray(900 * 1024 * 1024)', "x = 'x' * (3 * 1024 ** 3)", 'chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))']) {
      const result = await sandbox.run(source, { memoryMb: 128, timeoutMs: 20_000 });
      assert.equal(result.status, 'memory', source);
      assert.equal(result.error?.code, 'NBS_MEMORY', source);
    }
  });

  it('kills a sandbox that sends a line longer than any message can be, before holding it', async () => {
    const before = process.memoryUsage().rss;
    const forged = [
      'import os',
      'device = next(fd for fd in range(3, 64) if os.readlink(f"/proc/self/fd/{fd}") == "/dev/nbsandbox-output")',
      'os.write(device, b"{" + b"x" * (48 * 1024 * 1024))',
    ].join('\n');
    const result = await sandbox.run(forged, { memoryMb: 512, timeoutMs: 30_000 });
    assert.equal(result.status, 'killed');
    assert.equal(result.error?.code, 'NBS_SANDBOX_PROTOCOL');
    assert.ok(process.memoryUsage().rss - before < 40 * 1024 * 1024, `host grew by ${Math.round((process.memoryUsage().rss - before) / 1048576)} MiB`);
  });

  it('stays usable after all of the above', async () => {
    const result = await sandbox.run('print(6 * 7)');
    assert.equal(result.status, 'ok');
    assert.equal(result.stdout, '42\n');
  });
});

describe('pristine interpreter per run', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await sharedSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
  });
  after(() => sandbox.close());

  it('leaves no state for the next run', async () => {
    const first = await sandbox.run(`
import builtins, sys, os, random
leaked_global = 'yes'
builtins.leaked_builtin = 'yes'
sys.modules['leaked_module'] = sys
os.environ['LEAKED'] = 'yes'
open('/tmp/leaked.txt', 'w').write('yes')
os.makedirs('/home/pyodide/leaked', exist_ok=True)
import secrets, tempfile
print(random.getrandbits(64), secrets.token_hex(8), next(tempfile._get_candidate_names()))
`);
    assert.equal(first.status, 'ok', JSON.stringify(first.cells));
    const second = await sandbox.run(`
import builtins, sys, os, random
print('leaked_global' in globals(), hasattr(builtins, 'leaked_builtin'), 'leaked_module' in sys.modules,
      'LEAKED' in os.environ, os.path.exists('/tmp/leaked.txt'), os.path.exists('/home/pyodide/leaked'))
import secrets, tempfile
print(random.getrandbits(64), secrets.token_hex(8), next(tempfile._get_candidate_names()))
`);
    assert.equal(second.status, 'ok', JSON.stringify(second.cells));
    const [leaks, randomness] = second.stdout.trim().split('\n');
    assert.equal(leaks, 'False False False False False False');
    // Both processes restore the same snapshot: each value must still be its own.
    const firstValues = first.stdout.trim().split(' ');
    const secondValues = (randomness ?? '').split(' ');
    assert.equal(secondValues.length, 3);
    for (const [index, name] of ['random', 'secrets', 'tempfile names'].entries()) {
      assert.notEqual(secondValues[index], firstValues[index], `${name} repeat across runs`);
    }
  });
});

describe('host cost of a run', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await sharedSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
  });
  after(() => sandbox.close());

  it('costs the host CPU in proportion to what a run prints, control characters included', async () => {
    const hostCpu = async (mebibytes: number) => {
      const source = `import os, sys\nfor _ in range(${mebibytes}):\n    sys.stdout.write("\\x01" * (1 << 19))\n    os.write(2, b"\\x1b" * (1 << 19))`;
      const before = process.cpuUsage();
      const result = await sandbox.run(source, { maxOutputBytes: 64 * 1024 * 1024, maxRunOutputBytes: 256 * 1024 * 1024, timeoutMs: 60_000 });
      const used = process.cpuUsage(before);
      assert.equal(result.status, 'ok', JSON.stringify(result.error));
      assert.equal(Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr), mebibytes * 1024 * 1024);
      return (used.user + used.system) / 1000;
    };
    await hostCpu(1);
    const small = Math.min(await hostCpu(2), await hostCpu(2));
    const large = await hostCpu(32);
    // 16 times the output: about 16 times the work when linear, about 256 when quadratic.
    assert.ok(large / small < 48, `2 MiB cost ${Math.round(small)} ms of host CPU, 32 MiB ${Math.round(large)} ms`);
  });
});
