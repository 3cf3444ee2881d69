/**
 * The warm pool and the start-up snapshot: processes restore a verified snapshot, a warm process
 * that dies is replaced, the run queue is bounded, and a snapshot that does not match its
 * manifest or its inputs is never restored.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSandbox, NbsError, Sandbox } from '../dist/index.js';
import { locateRuntime } from '../dist/sandbox/locate.js';
import { defaultSnapshotPaths, verifySnapshot } from '../dist/sandbox/snapshot.js';

/** Sandbox processes this test process started (Deno running the runtime's main.js). */
function sandboxPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const commandLine = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (parent === process.pid && commandLine.includes('main.js')) pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('warm pool', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await createSandbox({ warmProcesses: 2, maxConcurrentRuns: 1, maxQueuedRuns: 1 });
    await sandbox.warmUp();
  });
  after(() => sandbox.close());

  it('starts processes from the snapshot that npm run build made', async () => {
    const stats = sandbox.stats();
    assert.equal(stats.startMode, 'snapshot', stats.snapshotReason);
    assert.equal(stats.ready, 2);
    const result = await sandbox.run(
      'import sys, pyodide\nprint("_nbsandbox_runtime" in sys.modules, "pyodide_js" in sys.modules, "_pyodide_core" in sys.modules, [n for n in dir(pyodide) if not n.startswith("_")])\nimport js',
    );
    assert.equal(result.stdout, "False False False ['http']\n", 'the runtime handover and the bridge modules are gone before user code; pyodide is the broker shim');
    assert.equal(result.cells[0]?.outputs.find((output) => output.output_type === 'error')?.ename, 'ModuleNotFoundError');
  });

  it('replaces a warm process that was killed while waiting', async () => {
    await until(() => sandbox.stats().ready === 2, 'the pool to refill after the previous run');
    const before = sandbox.stats();
    const [victim] = sandboxPids();
    assert.ok(victim, 'a warm sandbox process is running');
    process.kill(victim, 'SIGKILL');
    await until(() => sandbox.stats().failedWarm === before.failedWarm + 1, 'the death to be noticed');
    await until(() => sandbox.stats().ready === 2, 'a replacement to be ready');
    assert.ok(!sandboxPids().includes(victim));
    const result = await sandbox.run('print(7 * 6)');
    assert.equal(result.stdout, '42\n');
  });

  it('never hands the same process out twice', async () => {
    await until(() => sandbox.stats().ready === 2, 'a full pool');
    const started = sandbox.stats().started;
    const results = [];
    for (let index = 0; index < 3; index += 1) results.push(await sandbox.run('import os\nprint(os.getpid())'));
    assert.ok(results.every((result) => result.status === 'ok'));
    assert.equal(sandbox.stats().started - started, 3, 'each run consumed one process and the pool started one to replace it');
  });

  it('refuses a run with NBS_BUSY when the queue is full, and keeps the queued one', async () => {
    const running = sandbox.run('import time\ntime.sleep(1.5)\nprint("first")');
    await until(() => sandbox.stats().running === 1, 'the first run to start');
    const queued = sandbox.run('print("second")');
    await until(() => sandbox.stats().queued === 1, 'the second run to queue');
    await assert.rejects(sandbox.run('print("third")'), (error: unknown) => error instanceof NbsError && error.code === 'NBS_BUSY');
    assert.equal((await running).stdout, 'first\n');
    assert.equal((await queued).stdout, 'second\n');
  });

  it('rejects pool options out of range', async () => {
    for (const options of [{ warmProcesses: -1 }, { maxConcurrentRuns: 0 }, { maxQueuedRuns: 1.5 }]) {
      await assert.rejects(createSandbox(options), (error: unknown) => error instanceof NbsError && error.code === 'NBS_OPTION_INVALID');
    }
  });
});

describe('snapshot verification', () => {
  const files = locateRuntime();
  const built = defaultSnapshotPaths(files);

  function copyOfSnapshot(): { image: string; manifest: string } {
    const directory = mkdtempSync(join(tmpdir(), 'nbs-snapshot-'));
    const paths = { image: join(directory, 'snapshot.bin'), manifest: join(directory, 'snapshot.json') };
    copyFileSync(built.image, paths.image);
    copyFileSync(built.manifest, paths.manifest);
    return paths;
  }

  it('accepts the snapshot as built', () => {
    const check = verifySnapshot(files, copyOfSnapshot());
    assert.equal(check.usable, true);
  });

  it('refuses an image with one byte changed', () => {
    const paths = copyOfSnapshot();
    const image = readFileSync(paths.image);
    const middle = image.length >> 1;
    image[middle] = (image[middle] ?? 0) ^ 1;
    writeFileSync(paths.image, image);
    assert.deepEqual(verifySnapshot(files, paths), { usable: false, reason: 'the snapshot does not match its manifest' });
  });

  it('refuses a snapshot built from other inputs (another Pyodide or changed runtime Python)', () => {
    const paths = copyOfSnapshot();
    const manifest = JSON.parse(readFileSync(paths.manifest, 'utf8')) as Record<string, unknown>;
    writeFileSync(paths.manifest, JSON.stringify({ ...manifest, inputs: '0'.repeat(64) }));
    assert.equal(verifySnapshot(files, paths).usable, false);
  });

  it('refuses a missing or malformed manifest', () => {
    const paths = copyOfSnapshot();
    writeFileSync(paths.manifest, '{"format": 1, "sha256": "not a hash"}');
    assert.deepEqual(verifySnapshot(files, paths), { usable: false, reason: 'the snapshot manifest is not valid' });
    assert.equal(verifySnapshot(files, { ...paths, manifest: join(paths.manifest, 'missing') }).usable, false);
  });

  it('starts plain, and says why, when the snapshot is turned off', async () => {
    await using plain = await createSandbox({ warmProcesses: 0, snapshot: false });
    assert.equal(plain.stats().startMode, 'plain');
    assert.equal(plain.stats().snapshotReason, 'turned off');
    const result = await plain.run('print("plain")');
    assert.equal(result.stdout, 'plain\n');
  });
});

describe('a pool whose processes cannot start', () => {
  it('backs off instead of restarting in a loop, says so, and fails a run with a clear error', async () => {
    // A real pool whose runtime binary exits at once: every start-up fails.
    const broken = new Sandbox({ ...locateRuntime(), denoPath: '/bin/false' }, { warmProcesses: 2, maxConcurrentRuns: 1 }, undefined, {
      usable: false,
      reason: 'test',
    });
    try {
      await until(() => broken.stats().startFailuresInARow >= 3, 'three failed start-ups', 20_000);
      const { started } = broken.stats();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.ok(broken.stats().started - started <= 2, `no tight restart loop (${broken.stats().started - started} more starts in 1.5 s)`);
      await assert.rejects(broken.run('print(1)'), (error: unknown) => error instanceof NbsError && error.code === 'NBS_SANDBOX_START_FAILED');
    } finally {
      await broken.close();
    }
  });
});
