// Check latency: the in-wasm checker (a Checker worker running Pyodide) against the very same
// checker Python under native python3, measured in the same run, for sources of growing size.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Checker, loadPolicy } from '../dist/index.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SIZES = [50, 200, 2000, 20000];
const wasmDir = fileURLToPath(new URL('../wasm', import.meta.url));

/** Plausible notebook code: imports, functions, loops, pandas-style calls, no denied findings. */
function source(lines) {
  const block = [
    'import math',
    'import json',
    'def score(values, weight=1.5):',
    '    total = 0',
    '    for index, value in enumerate(values):',
    '        total += math.sqrt(abs(value)) * weight / (index + 1)',
    '    return round(total, 3)',
    'rows = [{"a": n, "b": n * 2} for n in range(100)]',
    'summary = {key: sum(row[key] for row in rows) for key in ("a", "b")}',
    'print(json.dumps(summary), score([row["a"] for row in rows]))',
  ];
  const out = [];
  while (out.length < lines) out.push(...block.map((line) => line.replace('score', `score${out.length}`)));
  return out.slice(0, lines).join('\n');
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const policy = await loadPolicy('default');
const checkPolicy = { magics: policy.magics, imports: policy.imports, rules: policy.rules, verdict: policy.verdict, writablePaths: ['/tmp'] };
const checker = new Checker({ workers: 1, cache: false });
await checker.warmUp();
// A checker is long-lived: measure it warm (wasm tiered up, rule modules imported), the way a
// running server's workers are.
for (let round = 0; round < 20; round += 1) await checker.check({ kind: 'cells', cells: [{ index: 0, source: source(200) }] }, policy);

const native = String.raw`
import json, sys, time
sys.path.insert(0, sys.argv[1])
from checker import check_request
request = json.loads(sys.stdin.read())
rounds = int(sys.argv[2])
samples = []
for _ in range(rounds):
    started = time.perf_counter()
    check_request(request)
    samples.append((time.perf_counter() - started) * 1000)
print(sorted(samples)[len(samples) // 2])
`;

const rows = [];
const wasmBySize = new Map();
for (const lines of SIZES) {
  const text = source(lines);
  const samples = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const startedAt = performance.now();
    const result = await checker.check({ kind: 'cells', cells: [{ index: 0, source: text }] }, policy);
    samples.push(performance.now() - startedAt);
    if (result.verdict === 'deny') throw new Error('bench source was denied');
  }
  const request = JSON.stringify({ kind: 'cells', cells: [{ index: 0, source: text }], policy: checkPolicy });
  const nativeMs = Number(execFileSync('python3', ['-c', native, wasmDir, String(ROUNDS)], { input: request }).toString().trim());
  const wasmMs = median(samples);
  wasmBySize.set(lines, wasmMs);
  rows.push({ measurement: `check ${lines} lines (in-wasm worker)`, 'median ms': Math.round(wasmMs * 10) / 10, baseline: 'same checker, native python3', 'baseline ms': Math.round(nativeMs * 10) / 10, ratio: (wasmMs / nativeMs).toFixed(2), target: '≤ 3' });
}
rows.push({
  measurement: 'growth 2,000 → 20,000 lines (in-wasm)',
  'median ms': Math.round(wasmBySize.get(20000)),
  baseline: '2,000-line check',
  'baseline ms': Math.round(wasmBySize.get(2000)),
  ratio: (wasmBySize.get(20000) / wasmBySize.get(2000)).toFixed(2),
  target: '≤ 12',
});
await checker.close();
console.log(`nbsandbox check bench on Node ${process.version}, ${execFileSync('python3', ['--version']).toString().trim()}; median of ${ROUNDS}`);
console.table(rows);
