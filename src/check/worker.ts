/**
 * A checker worker thread: one Pyodide instance that only parses and walks ASTs (wasm/checker);
 * it never executes user code. Hostile sources can still break the parser, so the parent
 * replaces a worker that dies or stops answering.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { loadPyodide } from 'pyodide';

interface WorkerData {
  readonly checkerDir: string;
}

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === '__pycache__' ? [] : pythonFiles(path);
    return name.endsWith('.py') ? [path] : [];
  });
}

const { checkerDir } = workerData as WorkerData;
const pyodide = await loadPyodide({ jsglobals: Object.create(null), env: {}, stdin: () => null });
for (const file of pythonFiles(checkerDir)) {
  const target = `/nbs/checker/${relative(checkerDir, file)}`;
  pyodide.FS.mkdirTree(target.slice(0, target.lastIndexOf('/')));
  pyodide.FS.writeFile(target, readFileSync(file));
}
pyodide.runPython("import sys; sys.path.insert(0, '/nbs'); sys.setrecursionlimit(10000)");
const check = pyodide.pyimport('checker').check as (request: string) => string;

parentPort?.on('message', (message: { id: number; request: string }) => {
  try {
    parentPort?.postMessage({ id: message.id, response: check(message.request) });
  } catch (error) {
    parentPort?.postMessage({ id: message.id, failure: String((error as Error)?.message ?? error).slice(0, 200) });
    // A failure inside Pyodide can leave the interpreter unusable: end this worker so the
    // parent starts a clean one.
    process.exit(1);
  }
});
parentPort?.postMessage({ ready: true });
