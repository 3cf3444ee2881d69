// Run benchmarks for nbsandbox. Each measurement prints beside a baseline measured in this same
// process (plain `loadPyodide()`, host `fetch()`, the deadline itself) as a ratio, because this
// machine is shared and absolute times drift; the target is printed beside it.
//
// BENCH_ROUNDS (default 5) sets how many samples each median is taken over.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { loadPyodide } from 'pyodide';
import { createSandbox, defaultPoolSize } from '../dist/index.js';
import { compileNetRules, createGuardedFetcher } from '../dist/sandbox/permissions/net.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const round = (value) => Math.round(value * 10) / 10;

const rows = [];
function row(measurement, value, unit, baselineName, baselineValue, target) {
  rows.push({ measurement, value: round(value), unit, baseline: baselineName, 'baseline value': round(baselineValue), ratio: (value / baselineValue).toFixed(2), target });
}

async function waitFor(condition) {
  while (!condition()) await sleep(20);
}

// The first user line prints the wall clock; run start is that instant minus the call to run().
const FIRST_LINE = 'import time; print(repr(time.time() * 1000))';
async function runStart(sandbox) {
  const calledAt = Date.now();
  const result = await sandbox.run(FIRST_LINE);
  if (result.status !== 'ok') throw new Error(`bench run failed: ${result.status} ${result.stderr}`);
  return Number(result.stdout) - calledAt;
}

// Baseline: plain loadPyodide() in this process, to the first line of Python.
const plainSamples = [];
for (let index = 0; index < ROUNDS; index += 1) {
  const calledAt = Date.now();
  const pyodide = await loadPyodide();
  plainSamples.push(Number(pyodide.runPython('import time; time.time() * 1000')) - calledAt);
}
const plainLoad = median(plainSamples);

{
  const pooled = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
  const samples = [];
  for (let index = 0; index < ROUNDS; index += 1) {
    await waitFor(() => pooled.stats().ready === 1);
    samples.push(await runStart(pooled));
  }
  row('run start from the warm pool (p50)', median(samples), 'ms', 'loadPyodide() in-process', plainLoad, '≤ 150 ms');
  await pooled.close();
}
for (const [name, snapshot] of [
  ['run start from the snapshot, no pool', true],
  ['run start without snapshot or pool', false],
]) {
  const sandbox = await createSandbox({ warmProcesses: 0, maxConcurrentRuns: 1, snapshot });
  if (snapshot && sandbox.stats().startMode !== 'snapshot') throw new Error(`no snapshot: ${sandbox.stats().snapshotReason}`);
  const samples = [];
  for (let index = 0; index < ROUNDS; index += 1) samples.push(await runStart(sandbox));
  row(name, median(samples), 'ms', 'loadPyodide() in-process', plainLoad, '—');
  await sandbox.close();
}

// Sustained pristine runs: every run takes a fresh process and the pool refills behind it, so
// the rate is bounded by how fast this machine can start sandbox processes.
{
  const poolSize = defaultPoolSize();
  const sandbox = await createSandbox({ warmProcesses: poolSize, maxConcurrentRuns: availableParallelism(), maxQueuedRuns: 1000 });
  await sandbox.warmUp();
  const RUNS = 30;
  const startedAt = performance.now();
  await Promise.all(
    Array.from({ length: RUNS }, async () => {
      const result = await sandbox.run('1 + 1');
      if (result.status !== 'ok') throw new Error(`bench run failed: ${result.status}`);
    }),
  );
  const perSecond = RUNS / ((performance.now() - startedAt) / 1000);
  row(`sustained pristine runs (${RUNS} runs, pool ${poolSize}, ${availableParallelism()} at once)`, perSecond, 'runs/s', 'loadPyodide() calls/s in-process', 1000 / plainLoad, '≥ 10 runs/s');
  await sandbox.close();
}

// Resident memory. Sandbox processes are Deno processes descending from a given process.
function rssTable() {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid=,rss=,comm=']).toString().trim().split('\n').map((line) => line.trim().split(/\s+/));
  return new Map(table.map(([pid, ppid, rss, comm]) => [pid, { ppid, rssMb: Number(rss) / 1024, comm }]));
}
function descendants(table, root) {
  const isBelow = (pid) => {
    for (let entry = table.get(pid); entry; entry = table.get(entry.ppid)) if (entry.ppid === String(root)) return true;
    return false;
  };
  return [...table].filter(([pid]) => isBelow(pid)).map(([, entry]) => entry);
}
{
  const sandbox = await createSandbox({ warmProcesses: 2, maxConcurrentRuns: 2 });
  await sandbox.warmUp();
  await sleep(2000);
  const idle = descendants(rssTable(), process.pid).filter((entry) => entry.comm === 'deno').map((entry) => entry.rssMb);
  const pyodide = await loadPyodide();
  pyodide.runPython('1 + 1');
  const self = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
  row(`RSS of one idle pooled sandbox (${idle.length} measured)`, median(idle), 'MiB', 'this Node process after loadPyodide()', self, '≤ 120 MiB');
  await sandbox.close();
}
{
  // The whole server idle with its default pool, in its own process: Node (with the checker
  // workers) plus every sandbox process below it.
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const server = spawn(process.execPath, ['dist/cli.js', 'serve'], { env: { ...process.env, PORT: String(port), NBS_LOG_FILE: '/dev/null' }, stdio: 'ignore' });
  let ready = null;
  for (let attempt = 0; attempt < 600 && !ready; attempt += 1) {
    await sleep(100);
    ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((response) => (response.ok ? response.json() : null), () => null);
  }
  await sleep(2000);
  const table = rssTable();
  const total = (table.get(String(server.pid))?.rssMb ?? NaN) + descendants(table, server.pid).reduce((sum, entry) => sum + entry.rssMb, 0);
  row(`RSS of the idle server (Node, ${ready?.sandboxes.poolSize} warm sandboxes)`, total, 'MiB', 'RSS of one idle pooled sandbox', rows.at(-1).value, '—');
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
}

// Timeout precision: wall time past a 1 s deadline.
{
  const sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
  for (const [name, source, target] of [
    ['timeout overshoot: interruptible Python loop', 'while True: pass', '≤ 50 ms'],
    ['timeout overshoot: time.sleep (needs the hard kill)', 'import time\ntime.sleep(100)', '≤ 200 ms'],
  ]) {
    const overshoots = [];
    for (let index = 0; index < ROUNDS; index += 1) {
      await waitFor(() => sandbox.stats().ready === 1);
      const result = await sandbox.run(source, { timeoutMs: 1000 });
      if (result.status !== 'timeout') throw new Error(`bench run did not time out: ${result.status}`);
      overshoots.push(result.durationMs - 1000);
    }
    row(name, median(overshoots), 'ms', 'the deadline', 1000, target);
  }

  // Brokered HTTP: one request from Python (urllib → device file → host broker → loopback
  // server and back), against the same request made by the host directly with fetch().
  const FETCHES = 40;
  const server = createServer((request, response) => response.end(Buffer.alloc(Number(new URL(request.url, 'http://x').searchParams.get('bytes')), 97)));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const guarded = createGuardedFetcher({ rules: compileNetRules({ allow: ['127.0.0.1'] }), allowAddresses: ['127.0.0.1'] });
  for (const bytes of [1024, 1024 * 1024]) {
    const url = `http://127.0.0.1:${port}/?bytes=${bytes}`;
    const direct = [];
    const broker = [];
    for (let index = 0; index < FETCHES; index += 1) {
      let startedAt = performance.now();
      await (await fetch(url)).arrayBuffer();
      direct.push(performance.now() - startedAt);
      startedAt = performance.now();
      const outcome = await guarded({ method: 'GET', url });
      if (!outcome.ok) throw new Error(`bench fetch failed: ${outcome.message}`);
      broker.push(performance.now() - startedAt);
    }
    await waitFor(() => sandbox.stats().ready === 1);
    const result = await sandbox.run(
      `import time, urllib.request\nsamples = []\nfor _ in range(${FETCHES}):\n    t = time.perf_counter()\n    urllib.request.urlopen("${url}").read()\n    samples.append((time.perf_counter() - t) * 1000)\nprint(sorted(samples)[len(samples) // 2])`,
      { permissions: { net: { allow: ['127.0.0.1'] } }, timeoutMs: 120_000 },
    );
    if (result.status !== 'ok') throw new Error(`bench brokered fetch failed: ${result.status} ${result.stderr}`);
    const label = bytes === 1024 ? '1 KiB' : '1 MiB';
    row(`host broker alone, GET ${label}`, median(broker), 'ms', 'fetch() on the host', median(direct), '—');
    row(`urllib in the sandbox via the broker, GET ${label}`, Number(result.stdout), 'ms', 'fetch() on the host', median(direct), '—');
  }
  server.close();
  await sandbox.close();
}

console.log(`nbsandbox run bench on Node ${process.version}, ${process.platform}-${process.arch}, ${availableParallelism()} cores; medians of ${ROUNDS}`);
console.table(rows);
