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
