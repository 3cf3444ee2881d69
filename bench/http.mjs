// HTTP throughput of POST /v1/check: autocannon in this process against a real server in its
// own process (`nbsandbox serve`, rate limits off, audit log to /dev/null), with a 200-line
// notebook, beside a baseline measured here: the same number of checks called directly on a
// Checker (no HTTP).
//
// Two scenarios, because the checker keeps a verdict cache keyed by the request:
//   same     the same notebook every request (after the first, every check is a cache hit);
//   unique   a different notebook every request (one constant differs, so every check misses).
//
// The load generator and the server share this machine's cores, so the HTTP numbers include
// the load generator's cost.
// The baseline keeps one check in flight per checker worker: that is all the workers can take.
// BENCH_DURATION (seconds, default 10) and BENCH_CONNECTIONS (default 10) change the load.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Checker, loadInputText, loadPolicy } from '../dist/index.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const CELLS = 20;

/** Ten lines of plausible analysis code for cell `index`; `variant` changes one constant. */
function cell(index, variant) {
  const kinds = [
    [
      'import math',
      'import json',
      'from collections import Counter, defaultdict',
      `SEED_${index} = ${variant}`,
      `def normalise_${index}(values):`,
      '    low, high = min(values), max(values)',
      '    span = (high - low) or 1',
      '    return [(value - low) / span for value in values]',
      `samples_${index} = [math.sin(n / 7) * 100 + SEED_${index} % 13 for n in range(200)]`,
      `print(json.dumps(normalise_${index}(samples_${index})[:5]))`,
    ],
    [
      'import pandas as pd',
      'import numpy as np',
      `frame_${index} = pd.DataFrame({"city": ["Oslo", "Lima", "Pune"] * 40, "value": np.arange(120) * 1.5})`,
      `frame_${index}["bucket"] = pd.cut(frame_${index}["value"], bins=4, labels=False)`,
      `grouped_${index} = frame_${index}.groupby(["city", "bucket"]).agg(total=("value", "sum"), count=("value", "size"))`,
      `grouped_${index} = grouped_${index}.reset_index().sort_values("total", ascending=False)`,
      `top_${index} = grouped_${index}.head(5)`,
      `assert len(top_${index}) <= 5, "head() returns at most five rows"`,
      `ratio_${index} = top_${index}["total"].sum() / max(frame_${index}["value"].sum(), 1)`,
      `print(top_${index}.to_string(index=False), round(ratio_${index}, 3))`,
    ],
    [
      'import statistics',
      'from dataclasses import dataclass',
      '@dataclass',
      `class Reading${index}:`,
      '    sensor: str',
      '    value: float',
      `readings_${index} = [Reading${index}(f"s{n % 4}", n * 0.25) for n in range(80)]`,
      `by_sensor_${index} = {}`,
      `for reading in readings_${index}: by_sensor_${index}.setdefault(reading.sensor, []).append(reading.value)`,
      `print({sensor: statistics.mean(values) for sensor, values in by_sensor_${index}.items()})`,
    ],
    [
      'import re',
      'import itertools',
      `TEXT_${index} = "the quick brown fox jumps over the lazy dog " * 20`,
      `words_${index} = re.findall(r"[a-z]+", TEXT_${index})`,
      `counts_${index} = Counter(words_${index})`,
      `pairs_${index} = list(itertools.islice(zip(words_${index}, words_${index}[1:]), 10))`,
      `def longest_${index}(items):`,
      '    return max(items, key=len) if items else ""',
      `lengths_${index} = sorted({len(word) for word in words_${index}})`,
      `print(longest_${index}(words_${index}), lengths_${index}, pairs_${index}[:3])`,
    ],
  ];
  return kinds[index % kinds.length];
}

/** A 200-line notebook (20 code cells of 10 lines, a few markdown cells) as .ipynb JSON. */
function notebook(variant) {
  const cells = [];
  for (let index = 0; index < CELLS; index += 1) {
    if (index % 5 === 0) cells.push({ cell_type: 'markdown', id: `notes-${index}`, metadata: {}, source: [`## Part ${index / 5 + 1}\n`, '\n', 'Exploring the sample data.'] });
    const lines = cell(index, variant);
    cells.push({
      cell_type: 'code',
      execution_count: index + 1,
      id: `cell-${index}`,
      metadata: {},
      outputs: [],
      source: lines.map((line, at) => (at < lines.length - 1 ? `${line}\n` : line)),
    });
  }
  return JSON.stringify({
    cells,
    metadata: {
      kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' },
      language_info: { name: 'python', version: '3.12' },
    },
    nbformat: 4,
    nbformat_minor: 5,
  });
}

const body = (variant) => JSON.stringify({ notebook: JSON.parse(notebook(variant)) });
const headers = { 'content-type': 'application/json' };

async function startServer(script = 'dist/cli.js', args = ['serve'], readyPath = '/readyz') {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise((resolve) => probe.close(resolve));
  const env = { ...process.env, PORT: String(port), NBS_RATE_LIMIT_CHECK: '0', NBS_RATE_LIMIT_RUN: '0', NBS_RATE_LIMIT_OTHER: '0', NBS_LOG_FILE: '/dev/null' };
  const child = spawn(process.execPath, [script, ...args], { env, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt += 1) {
    if (attempt > 600) throw new Error('the server did not become ready');
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (await fetch(`${url}${readyPath}`, readyPath === '/readyz' ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).then((response) => response.ok, () => false)) break;
  }
  return {
    url,
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}
const server = await startServer();

// The notebook must be benign: one request first, and its verdict checked.
const probe = await fetch(`${server.url}/v1/check`, { method: 'POST', headers, body: body(0) });
const probed = await probe.json();
if (probe.status !== 200 || probed.verdict === 'deny') {
  await server.close();
  throw new Error(`bench notebook refused: ${probe.status} ${JSON.stringify(probed).slice(0, 500)}`);
}
const codeLines = JSON.parse(notebook(0)).cells.filter((item) => item.cell_type === 'code').reduce((sum, item) => sum + item.source.length, 0);
const cacheStats = async () => {
  const ready = await (await fetch(`${server.url}/readyz`)).json();
  return { hits: ready.checkCache.hits + ready.answerCache.hits, misses: ready.checkCache.misses };
};

async function load(name, options, target = server) {
  const before = target === server ? await cacheStats() : null;
  const result = await autocannon({ url: `${target.url}/v1/check`, method: 'POST', headers, connections: CONNECTIONS, duration: DURATION, ...options });
  const after = target === server ? await cacheStats() : null;
  if (result.errors > 0 || result.timeouts > 0) console.error(`${name}: ${result.errors} errors, ${result.timeouts} timeouts`);
  return { result, hits: after && before ? after.hits - before.hits : null, misses: after && before ? after.misses - before.misses : null };
}

const same = await load('same', { body: body(0) });
let next = 1;
const unique = await load('unique', { requests: [{ method: 'POST', headers, setupRequest: (request) => ({ ...request, body: body(next++) }) }] });
await server.close();

// The framework's ceiling on this machine: the same body to a bare Hono server.
const bare = await startServer('bench/bare-hono.mjs', [], '/v1/check');
const ceiling = await load('bare', { body: body(0) }, bare);
await bare.close();

// Baseline: what the handler does without HTTP (load the notebook text, check it), with the
// server's worker count and one check in flight per worker (see the note at the top).
const WORKERS = Math.max(1, Math.min(8, availableParallelism()));
const policy = await loadPolicy('default');
const checker = new Checker({ workers: WORKERS });
await checker.warmUp();

async function direct(count, textOf) {
  let issued = 0;
  const startedAt = performance.now();
  const lane = async () => {
    while (issued < count) {
      const text = textOf(issued);
      issued += 1;
      const input = loadInputText('ipynb', text, policy.limits);
      const result = await checker.check(input.check, policy);
      if (result.verdict === 'deny') throw new Error('bench notebook denied in the baseline');
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, lane));
  return count / ((performance.now() - startedAt) / 1000);
}

const sameText = notebook(0);
// Like the server, which checked this notebook once before the load (the probe).
await checker.check(loadInputText('ipynb', sameText, policy.limits).check, policy);
const sameDirect = await direct(same.result['2xx'], () => sameText);
const uniqueDirect = await direct(unique.result['2xx'], (index) => notebook(1_000_000 + index));
const directCache = checker.cacheStats();
await checker.close();

const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const rows = [];
for (const [name, run, directRate, target] of [
  ['same notebook (cache hits)', same, sameDirect, '≥ 5000 req/s'],
  ['unique notebook per request (cache misses)', unique, uniqueDirect, '≥ 150 req/s'],
]) {
  const { result } = run;
  rows.push({
    scenario: name,
    'req/s (avg)': round(result.requests.average),
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    requests: result['2xx'] + result.non2xx,
    non2xx: result.non2xx,
    'cache hits/misses': run.hits === null ? 'n/a' : `${run.hits}/${run.misses}`,
    'baseline checks/s (direct)': round(directRate),
    'ratio HTTP/direct': (result.requests.average / directRate).toFixed(2),
    'bare Hono req/s': round(ceiling.result.requests.average),
    'ratio HTTP/bare': (result.requests.average / ceiling.result.requests.average).toFixed(2),
    target,
  });
}
console.log(
  `POST /v1/check, ${codeLines}-line notebook (${CELLS} code cells, ${Buffer.byteLength(body(0))} bytes), ` +
    `${CONNECTIONS} connections, ${DURATION} s each, ${WORKERS} checker workers; ` +
    `baseline: loadInputText + Checker.check, ${WORKERS} in flight (its cache: ${directCache.hits} hits, ${directCache.misses} misses); ` +
    `ceiling: bare Hono parsing the same body (bench/bare-hono.mjs), p50 ${ceiling.result.latency.p50} ms`,
);
console.table(rows);
