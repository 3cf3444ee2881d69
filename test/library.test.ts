/** The library API: createSandbox with `await using`, input forms, option validation, close. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createSandbox, NbsError, type Sandbox } from '../dist/index.js';

describe('library API', () => {
  it('works with await using and runs source and notebook cells', async () => {
    let escaped: Sandbox | undefined;
    {
      await using sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 2 });
      escaped = sandbox;
      const [fromSource, fromCells] = await Promise.all([
        sandbox.run('x = 2\nx ** 10'),
        sandbox.run({ cells: [{ source: 'y = 3', id: 'first', index: 1 }, { source: 'print(y * 2)', id: 'second', index: 3 }] }),
      ]);
      assert.equal(fromSource.status, 'ok');
      const result = fromSource.cells[0]?.outputs[0];
      assert.ok(result?.output_type === 'execute_result' && result.data['text/plain'] === '1024');
      assert.deepEqual(
        fromCells.cells.map((cell) => [cell.index, cell.id, cell.status, cell.executionCount]),
        [
          [1, 'first', 'ok', 1],
          [3, 'second', 'ok', 2],
        ],
      );
      assert.equal(fromCells.stdout, '6\n');
      assert.equal(typeof fromCells.durationMs, 'number');
      assert.ok(fromCells.peakMemoryMb === null || fromCells.peakMemoryMb > 0);
      assert.doesNotThrow(() => JSON.parse(JSON.stringify(fromCells)));

      // IPython syntax does not fail the cell: each magic is a no-op with a note on stderr.
      const magics = await sandbox.run({
        cells: [
          { source: '%matplotlib inline\nfiles = !ls /\nfor i in range(2):\n    !echo hi\nprint(files)\n6 * 7' },
          { source: '%%bash\necho from-bash' },
        ],
      });
      assert.equal(magics.status, 'ok', JSON.stringify(magics));
      const answer = magics.cells[0]?.outputs.find((output) => output.output_type === 'execute_result');
      assert.ok(answer?.output_type === 'execute_result' && answer.data['text/plain'] === '42');
      assert.equal(magics.stdout, 'None\n');
      assert.match(magics.stderr, /line 1: %matplotlib skipped/);
      assert.match(magics.stderr, /line 2: !ls skipped/);
      assert.match(magics.stderr, /line 1: %%bash skipped/);
      assert.ok(!JSON.stringify(magics).includes('from-bash\n'));
    }
    await assert.rejects(escaped.run('1'), (error: unknown) => error instanceof NbsError && error.code === 'NBS_SANDBOX_CLOSED');
  });

  it('rejects options out of range and permission grants with NBS_OPTION_INVALID', async () => {
    const sandbox = await createSandbox({ warmProcesses: 0 });
    try {
      for (const options of [{ timeoutMs: 0 }, { memoryMb: 10 }, { memoryMb: 1.5 }, { maxOutputBytes: -1 }, { permissions: { net: 'example.com' } }]) {
        await assert.rejects(
          sandbox.run('1', options as never),
          (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID',
          JSON.stringify(options),
        );
      }
      await assert.rejects(sandbox.run({ cells: [{ source: 42 }] } as never), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
    } finally {
      await sandbox.close();
    }
  });

  it('kills a process whose resident memory passes its budget, with status memory', async () => {
    // No allowance for the runtime itself: the host watchdog must end the run on its own.
    const sandbox = await createSandbox({ warmProcesses: 0, runtimeOverheadMb: 0 });
    try {
      const result = await sandbox.run('import time\ntime.sleep(30)', { memoryMb: 64, timeoutMs: 60_000 });
      assert.equal(result.status, 'memory');
      assert.equal(result.error?.code, 'NBS_MEMORY');
      assert.ok(result.durationMs < 30_000, `${result.durationMs}`);
    } finally {
      await sandbox.close();
    }
  });

  it('runs asyncio and top-level await on the sandbox loop, and never waits forever', async () => {
    await using sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
    const result = await sandbox.run(
      {
        cells: [
          { source: 'import asyncio\nasync def pair():\n    return await asyncio.gather(asyncio.sleep(0.05, result=1), asyncio.sleep(0.01, result=2))\nprint(asyncio.run(pair()))' },
          { source: 'queue = asyncio.Queue()\nawait queue.put(5)\nawait queue.get()' },
          { source: 'await asyncio.Event().wait()' },
        ],
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(result.stdout, '[1, 2]\n');
    const last = (index: number) => result.cells[index]?.outputs.at(-1);
    assert.deepEqual(last(1), { output_type: 'execute_result', execution_count: 2, data: { 'text/plain': '5' }, metadata: {} });
    const stuck = last(2);
    assert.ok(stuck?.output_type === 'error' && /wait forever/.test(stuck.evalue), JSON.stringify(stuck));
    assert.equal(result.status, 'error', 'an await with nothing to wait for fails at once instead of hanging to the timeout');
  });

  it('ends a run in flight with status killed and refuses queued runs when the sandbox closes', async () => {
    const sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
    // Settled into a value at once: under load the run may reject (closed before it started)
    // while the test still sleeps, and an unobserved rejection would fail the test.
    const running = sandbox.run('import time\ntime.sleep(60)', { timeoutMs: 120_000 }).catch((error: unknown) => error);
    // Caught at once: it rejects while the test still waits for the first run.
    const queued = sandbox.run('print("queued")').then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 6000));
    await sandbox.close();
    const result = await running;
    if (result instanceof NbsError) assert.equal(result.code, 'NBS_SANDBOX_CLOSED');
    else assert.equal((result as { status: string }).status, 'killed');
    const queuedError = await queued;
    assert.ok(queuedError instanceof NbsError && queuedError.code === 'NBS_SANDBOX_CLOSED', String(queuedError));
  });
});
