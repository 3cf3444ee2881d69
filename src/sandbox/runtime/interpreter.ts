/**
 * The interpreter Worker of a sandbox process: loads Pyodide with nothing of the host exposed,
 * hardens it, and runs the cells the host sends, one message per finished cell.
 */
import { deno, type WorkerScope } from './deno-api.js';
import type { CellSource, RunLimits } from '../protocol.js';

interface PyProxyCallable {
  (...args: unknown[]): unknown;
}
interface PyNamespace {
  get(key: string): PyProxyCallable;
  set(key: string, value: unknown): void;
}
interface ErrnoErrorConstructor {
  new (errno: number): Error;
}
interface PyodideApi {
  version: string;
  runPython(code: string, options?: { globals?: unknown; filename?: string }): unknown;
  setInterruptBuffer(buffer: Int32Array): void;
  setStdout(options: { write(bytes: Uint8Array): number }): void;
  setStderr(options: { write(bytes: Uint8Array): number }): void;
  mountNodeFS?: unknown;
  FS: { ErrnoError: ErrnoErrorConstructor; filesystems: Record<string, unknown> };
  _module: {
    HEAP8: Int8Array;
    ERRNO_CODES: Record<string, number>;
    SOCKFS: { websocket_sock_ops: Record<string, unknown> };
  };
}
type LoadPyodide = (options: Record<string, unknown>) => Promise<PyodideApi>;

const scope = globalThis as unknown as WorkerScope;
const MiB = 1024 * 1024;
const WASM_PAGE = 65536;

let memoryCapBytes = Number.POSITIVE_INFINITY;

/**
 * Emscripten grows its heap through WebAssembly.Memory#grow; refusing growth past the cap makes
 * malloc fail, which Python reports as MemoryError while the interpreter stays usable.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

function capMemoryGrowth(): void {
  const memoryPrototype = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } }).WebAssembly
    .Memory.prototype;
  const grow = memoryPrototype.grow;
  memoryPrototype.grow = function cappedGrow(this: WasmMemory, delta: number) {
    if (this.buffer.byteLength + delta * WASM_PAGE > memoryCapBytes) {
      throw new RangeError('nbsandbox memory limit reached');
    }
    return grow.call(this, delta);
  };
}

/** Closes the Emscripten routes to the host that Deno would otherwise have to refuse. */
function closeHostRoutes(pyodide: PyodideApi): void {
  const { ErrnoError } = pyodide.FS;
  const eacces = pyodide._module.ERRNO_CODES['EACCES'] ?? 2;
  const refuse = (): never => {
    throw new ErrnoError(eacces);
  };
  const socketOps = pyodide._module.SOCKFS.websocket_sock_ops;
  socketOps['createPeer'] = refuse;
  socketOps['listen'] = refuse;
  socketOps['connect'] = refuse;
  pyodide.mountNodeFS = refuse;
  delete pyodide.FS.filesystems['NODEFS'];
}

function heapMb(pyodide: PyodideApi): number {
  return pyodide._module.HEAP8.buffer.byteLength / MiB;
}

interface RawStreams {
  stdout: string;
  stderr: string;
  budget: number;
  truncated: boolean;
}

/** Output written straight to fd 1/2 (os.write) bypasses sys.stdout; it is captured here. */
function captureRawStreams(pyodide: PyodideApi, raw: RawStreams): void {
  const writer = (name: 'stdout' | 'stderr', decoder = new TextDecoder()) => ({
    write(bytes: Uint8Array): number {
      if (raw.budget <= 0) {
        raw.truncated = true;
        return bytes.length;
      }
      const kept = bytes.subarray(0, raw.budget);
      raw.budget -= kept.length;
      if (kept.length < bytes.length) raw.truncated = true;
      raw[name] += decoder.decode(kept, { stream: true });
      return bytes.length;
    },
  });
  pyodide.setStdout(writer('stdout'));
  pyodide.setStderr(writer('stderr'));
}

interface Interpreter {
  pyodide: PyodideApi;
  runCell: PyProxyCallable;
  configure: PyProxyCallable;
  raw: RawStreams;
}

async function start(pyodideDirUrl: string, wasmDirUrl: string, interruptBuffer: Int32Array): Promise<Interpreter> {
  const startedAt = performance.now();
  capMemoryGrowth();
  const { loadPyodide } = (await import(new URL('pyodide.mjs', pyodideDirUrl).href)) as { loadPyodide: LoadPyodide };
  const pyodide = await loadPyodide({
    // Under Deno, Pyodide reads its files by path.
    indexURL: decodeURIComponent(new URL(pyodideDirUrl).pathname),
    jsglobals: Object.create(null),
    env: {},
    stdin: () => null,
    fullStdLib: false,
  });
  closeHostRoutes(pyodide);
  pyodide.setInterruptBuffer(interruptBuffer);
  const raw: RawStreams = { stdout: '', stderr: '', budget: 0, truncated: false };
  captureRawStreams(pyodide, raw);

  // Runtime Python runs in private namespaces, never in the user's __main__.
  const privateNamespace = () => pyodide.runPython('dict()') as PyNamespace;
  const namespace = privateNamespace();
  pyodide.runPython(deno.readTextFileSync(new URL('runner.py', wasmDirUrl)), { globals: namespace, filename: '<nbsandbox runner>' });
  const magics = privateNamespace();
  pyodide.runPython(deno.readTextFileSync(new URL('checker/magics.py', wasmDirUrl)), { globals: magics, filename: '<nbsandbox magics>' });
  namespace.set('_transform_magics', magics.get('transform'));
  const runCell = namespace.get('run_cell');
  const configure = namespace.get('configure');
  pyodide.runPython(deno.readTextFileSync(new URL('harden.py', wasmDirUrl)), {
    globals: privateNamespace(),
    filename: '<nbsandbox harden>',
  });
  const python = String(pyodide.runPython('import sys; sys.version.split()[0]', { globals: privateNamespace() }));
  scope.postMessage({ t: 'ready', python, pyodide: pyodide.version, startupMs: Math.round(performance.now() - startedAt) });
  return { pyodide, runCell, configure, raw };
}

function runCells(interpreter: Interpreter, cells: readonly CellSource[], limits: RunLimits): void {
  const { pyodide, runCell, configure, raw } = interpreter;
  memoryCapBytes = limits.memoryMb * MiB;
  raw.budget = limits.maxOutputBytes;
  configure(JSON.stringify({ maxOutputBytes: limits.maxOutputBytes, maxResultBytes: limits.maxResultBytes }));
  let executionCount = 0;
  for (const cell of cells) {
    executionCount += 1;
    const result = JSON.parse(String(runCell(cell.index, cell.source, executionCount))) as {
      status: 'ok' | 'error';
      ename: string | null;
      outputs: Array<Record<string, unknown>>;
      truncated: boolean;
    };
    for (const name of ['stdout', 'stderr'] as const) {
      if (raw[name]) result.outputs.push({ output_type: 'stream', name, text: raw[name] });
      raw[name] = '';
    }
    scope.postMessage({
      t: 'cell',
      index: cell.index,
      status: result.status,
      ...(result.ename ? { ename: result.ename } : {}),
      outputs: result.outputs,
      truncated: result.truncated || raw.truncated,
      heapMb: heapMb(pyodide),
    });
    if (result.status !== 'ok') break;
  }
  scope.postMessage({ t: 'done' });
}

let interpreter: Promise<Interpreter> | undefined;

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as
    | { t: 'init'; pyodideDirUrl: string; wasmDirUrl: string; interruptBuffer: Int32Array }
    | { t: 'run'; cells: CellSource[]; limits: RunLimits };
  if (message.t === 'init') {
    interpreter = start(message.pyodideDirUrl, message.wasmDirUrl, message.interruptBuffer);
    interpreter.catch((error: unknown) => scope.postMessage({ t: 'fatal', message: `start-up failed: ${String(error)}` }));
    return;
  }
  if (!interpreter) {
    scope.postMessage({ t: 'fatal', message: 'run before start-up' });
    return;
  }
  interpreter
    .then((ready) => runCells(ready, message.cells, message.limits))
    .catch((error: unknown) => scope.postMessage({ t: 'fatal', message: `interpreter died: ${String(error)}` }));
};
