/**
 * The checker's Python unit tests (test/python), run inside Pyodide: the interpreter the checker
 * really runs on (CPython 3.14), so CI needs no native Python. A worker thread with the checker's
 * stack size, because some tests feed deeply nested source.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { sharedCorpus } from './helpers.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const benign = sharedCorpus('benign');

const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
(async () => {
  const pyodideModule = await import(workerData.pyodideUrl);
  const loadPyodide = pyodideModule.loadPyodide ?? pyodideModule.default.loadPyodide;
  const pyodide = await loadPyodide({ env: { NBS_CHECKER_PARENT: '/nbs', NBS_CORPUS: '/corpus' }, stdout: () => {}, stderr: () => {} });
  for (const [from, target] of workerData.files) {
    pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
    pyodide.FS.writeFile(target, readFileSync(from));
  }
  parentPort.postMessage(String(pyodide.runPython(workerData.script)));
})().catch((error) => parentPort.postMessage(JSON.stringify({ crash: String(error && error.message || error) })));
`;

const SCRIPT = `
import io, json, sys, unittest
sys.setrecursionlimit(10000)
stream = io.StringIO()
suite = unittest.defaultTestLoader.discover('/tests')
result = unittest.TextTestRunner(stream=stream, verbosity=1).run(suite)
json.dumps({"run": result.testsRun, "failures": len(result.failures), "errors": len(result.errors),
            "skipped": [str(test) + ": " + reason for test, reason in result.skipped], "log": stream.getvalue()[-6000:]})
`;

function listFiles(from: string, to: string, suffix: string): [string, string][] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return name === '__pycache__' ? [] : walk(path);
      return name.endsWith(suffix) ? [path] : [];
    });
  return walk(from).map((path) => [path, `${to}/${relative(from, path)}`]);
}

describe('checker unit tests in Pyodide', () => {
  it('pass (test/python/test_checker.py)', async () => {
    const files = [
      ...listFiles(join(root, 'wasm', 'checker'), '/nbs/checker', '.py'),
      ...listFiles(join(root, 'test', 'python'), '/tests', '.py'),
      ...(benign.skip ? [] : listFiles(benign.dir, '/corpus', '.ipynb')),
    ];
    const pyodideUrl = pathToFileURL(createRequire(import.meta.url).resolve('pyodide')).href;
    const worker = new Worker(WORKER, { eval: true, workerData: { files, script: SCRIPT, pyodideUrl }, resourceLimits: { stackSizeMb: 64 } });
    const answer = await new Promise<string>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    const summary = JSON.parse(answer) as { crash?: string; run: number; failures: number; errors: number; skipped: string[]; log: string };
    assert.equal(summary.crash, undefined);
    assert.equal(summary.failures + summary.errors, 0, summary.log);
    // Only the corpus test may skip, and only when the corpus is not beside the project.
    assert.deepEqual(summary.skipped.map((line) => line.split(' ')[0]), benign.skip ? ['test_benign_corpus_is_never_denied'] : []);
    if (benign.skip) console.log(`skipped the benign corpus test: ${benign.skip}`);
    assert.ok(summary.run >= 25, `${summary.run} tests ran`);
  });
});
