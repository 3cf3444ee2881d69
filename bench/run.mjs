// Benchmarks for nbsandbox. Each measurement prints beside a baseline measured in the same
// process, as a ratio, because this machine is shared and absolute times drift.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { loadPyodide } from 'pyodide';
import { createSandbox } from '../dist/index.js';
import { compileNetRules, createGuardedFetcher } from '../dist/sandbox/permissions/net.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function timeIt(rounds, action) {
  const samples = [];
  for (let round = 0; round < rounds; round += 1) {
    const startedAt = performance.now();
    await action();
    samples.push(performance.now() - startedAt);
  }
  return median(samples);
}

const rows = [];
function row(name, ms, baselineMs, baselineName) {
  rows.push({ measurement: name, 'median ms': Math.round(ms * 10) / 10, baseline: baselineName, 'baseline ms': Math.round(baselineMs * 10) / 10, ratio: (ms / baselineMs).toFixed(2) });
}

const plainLoad = await timeIt(ROUNDS, async () => {
  const pyodide = await loadPyodide();
  pyodide.runPython('1 + 1');
});

const coldRun = await timeIt(ROUNDS, async () => {
  const sandbox = await createSandbox({ warmProcesses: 0 });
  const result = await sandbox.run('1 + 1');
  if (result.status !== 'ok') throw new Error(`bench run failed: ${result.status}`);
  await sandbox.close();
});
row('cold run: spawn + load + harden + run("1 + 1")', coldRun, plainLoad, 'loadPyodide() in-process');

const sandbox = await createSandbox({ warmProcesses: 1, maxConcurrentRuns: 1 });
const warmSamples = [];
await timeIt(ROUNDS, async () => {
  await new Promise((resolve) => setTimeout(resolve, 8000)); // let the next process finish starting
  const startedAt = performance.now();
  const result = await sandbox.run('1 + 1');
  if (result.status !== 'ok') throw new Error(`bench run failed: ${result.status}`);
  warmSamples.push(performance.now() - startedAt);
});
row('run on a process started ahead (warmProcesses: 1)', median(warmSamples), plainLoad, 'loadPyodide() in-process');

// Timeout precision: wall time past a 1 s deadline, against the deadline itself.
for (const [name, source] of [
  ['interruptible Python loop', 'while True: pass'],
  ['time.sleep (needs the hard kill)', 'import time\ntime.sleep(100)'],
]) {
  const overshoots = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const result = await sandbox.run(source, { timeoutMs: 1000 });
    if (result.status !== 'timeout') throw new Error(`bench run did not time out: ${result.status}`);
    overshoots.push(result.durationMs - 1000);
  }
  row(`timeout overshoot: ${name}`, median(overshoots), 1000, 'the 1000 ms deadline');
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
  await new Promise((resolve) => setTimeout(resolve, 8000));
  const result = await sandbox.run(
    `import time, urllib.request\nsamples = []\nfor _ in range(${FETCHES}):\n    t = time.perf_counter()\n    urllib.request.urlopen("${url}").read()\n    samples.append((time.perf_counter() - t) * 1000)\nprint(sorted(samples)[len(samples) // 2])`,
    { permissions: { net: { allow: ['127.0.0.1'] } }, timeoutMs: 120_000 },
  );
  if (result.status !== 'ok') throw new Error(`bench brokered fetch failed: ${result.status} ${result.stderr}`);
  const label = bytes === 1024 ? '1 KiB' : '1 MiB';
  row(`host broker alone, GET ${label}`, median(broker), median(direct), 'fetch() on the host');
  row(`urllib in the sandbox via the broker, GET ${label}`, Number(result.stdout), median(direct), 'fetch() on the host');
}
server.close();
await sandbox.close();

// Resident memory of idle pooled sandbox processes (Deno + Pyodide, hardened, waiting for a run).
function denoDescendantsRssMb() {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid=,rss=,comm=']).toString().trim().split('\n').map((line) => line.trim().split(/\s+/));
  const children = new Map();
  for (const [pid, ppid, rss, comm] of table) children.set(pid, { ppid, rss: Number(rss), comm });
  const isDescendant = (pid) => {
    for (let current = children.get(pid); current; current = children.get(current.ppid)) if (current.ppid === String(process.pid)) return true;
    return false;
  };
  return [...children].filter(([pid, entry]) => entry.comm === 'deno' && isDescendant(pid)).map(([, entry]) => entry.rss / 1024);
}
const pool = await createSandbox({ warmProcesses: 2, maxConcurrentRuns: 2 });
await pool.warmUp();
await new Promise((resolve) => setTimeout(resolve, 2000));
const idle = denoDescendantsRssMb();
row(`RSS of one idle pooled sandbox (MiB, ${idle.length} measured)`, median(idle), 120, 'the 120 MiB target');

// Sustained pristine runs: each run takes a fresh process, the pool refills in the background.
const SUSTAINED = 12;
const startedAt = performance.now();
await Promise.all(
  Array.from({ length: SUSTAINED }, async () => {
    const result = await pool.run('1 + 1');
    if (result.status !== 'ok') throw new Error(`bench run failed: ${result.status}`);
  }),
);
const perSecond = SUSTAINED / ((performance.now() - startedAt) / 1000);
rows.push({ measurement: `sustained pristine runs/s (${SUSTAINED} runs, pool of 2)`, 'median ms': Math.round(perSecond * 100) / 100, baseline: 'the 10 runs/s target', 'baseline ms': 10, ratio: (perSecond / 10).toFixed(2) });
await pool.close();

console.log(`nbsandbox bench on Node ${process.version}, ${process.platform}-${process.arch}; median of ${ROUNDS}`);
console.table(rows);
