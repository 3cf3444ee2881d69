/**
 * The interpreter Worker of a sandbox process: loads Pyodide with nothing of the host exposed,
 * hardens it, and runs the cells the host sends. Output and events go to the main thread
 * through the shared ring (ring.ts) as they happen.
 */
import { deno, type WorkerScope } from './deno-api.js';
import type { CellSource, RunGrants, RunLimits } from '../protocol.js';
import { FILE_CHUNK_BYTES } from './wire-sizes.js';
import { RingWriter, STREAM_NAMES, type StreamName } from './ring.js';

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
interface DeviceStream {
  nbsRequest?: Uint8Array[];
  nbsAnswer?: Uint8Array;
  nbsOffset?: number;
}
interface DeviceOperations {
  open(stream: DeviceStream): void;
  close(stream: DeviceStream): void;
  read(stream: DeviceStream, buffer: Int8Array, offset: number, length: number): number;
  write(stream: DeviceStream, buffer: Int8Array, offset: number, length: number): number;
}
interface EmscriptenFs {
  ErrnoError: ErrnoErrorConstructor;
  filesystems: Record<string, unknown>;
  makedev(major: number, minor: number): number;
  registerDevice(device: number, operations: DeviceOperations): void;
  mkdev(path: string, mode: number, device: number): void;
  mkdirTree(path: string): void;
  writeFile(path: string, data: Uint8Array): void;
  readFile(path: string): Uint8Array;
  readdir(path: string): string[];
  lstat(path: string): { mode: number; size: number };
  analyzePath(path: string): { exists: boolean };
  isDir(mode: number): boolean;
  isFile(mode: number): boolean;
}
interface PyodideApi {
  version: string;
  runPython(code: string, options?: { globals?: unknown; filename?: string }): unknown;
  setInterruptBuffer(buffer: Int32Array): void;
  makeMemorySnapshot(): Uint8Array;
  loadPackage(
    names: string[],
    options: { messageCallback: (message: string) => void; errorCallback: (message: string) => void; checkIntegrity: boolean },
  ): Promise<unknown>;
  setStdout(options: { write(bytes: Uint8Array): number }): void;
  setStderr(options: { write(bytes: Uint8Array): number }): void;
  mountNodeFS?: unknown;
  _api?: { config?: { _loadSnapshot?: unknown } };
  FS: EmscriptenFs;
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

const textEncoder = new TextEncoder();
let ring: RingWriter | undefined;

/** Sends one event to the host, after everything written before it. */
function emit(event: unknown): void {
  ring?.event(textEncoder.encode(JSON.stringify(event)));
}

/**
 * Everything written to fd 1 and 2, by `print` (the runner writes there) or straight to the file
 * descriptor, goes through here: counted per stream against the run's cap and sent on at once.
 * Past the cap the write fails with EFBIG (the runner turns that into OutputLimitExceeded) and
 * every later write fails too. The host counts the same bytes again; this only ends a run cleanly.
 */
class StreamCapture {
  cell = 0;
  private readonly decoders = STREAM_NAMES.map(() => new TextDecoder());
  private readonly used = [0, 0];
  private cap = -1;
  limitHit = false;

  constructor(private readonly pyodide: PyodideApi) {}

  /** From now on writes count against `maxBytes` per stream (before that they are dropped). */
  open(maxBytes: number): void {
    this.cap = maxBytes;
  }

  writer(stream: number): { write(bytes: Uint8Array): number } {
    return { write: (bytes) => this.write(stream, bytes) };
  }

  private write(stream: number, bytes: Uint8Array): number {
    if (this.cap < 0 || !ring) return bytes.length;
    if (this.limitHit) throw this.tooLarge();
    const text = this.decoders[stream]?.decode(bytes, { stream: true }) ?? '';
    let encoded = textEncoder.encode(text);
    const room = this.cap - (this.used[stream] ?? 0);
    const over = encoded.length > room;
    if (over) {
      let end = Math.max(0, room);
      while (end > 0 && ((encoded[end] ?? 0) & 0xc0) === 0x80) end -= 1;
      encoded = encoded.subarray(0, end);
    }
    this.used[stream] = (this.used[stream] ?? 0) + encoded.length;
    if (encoded.length > 0) ring.stream(stream, this.cell, encoded);
    if (over) {
      this.limitHit = true;
      emit({ t: 'limit', stream: STREAM_NAMES[stream] as StreamName });
      throw this.tooLarge();
    }
    return bytes.length;
  }

  private tooLarge(): Error {
    return new this.pyodide.FS.ErrnoError(this.pyodide._module.ERRNO_CODES['EFBIG'] ?? 22);
  }
}

/**
 * Results, errors and (later) displays: the runner writes each output as one JSON event to this
 * device, so it reaches the host in order with the streams. Python gets no JavaScript object.
 */
const OUTPUT_DEVICE = '/dev/nbsandbox-output';

function installOutputDevice(pyodide: PyodideApi): void {
  const fs = pyodide.FS;
  const device = fs.makedev(64, 1);
  fs.registerDevice(device, {
    open() {},
    close() {},
    read() {
      throw new fs.ErrnoError(pyodide._module.ERRNO_CODES['EINVAL'] ?? 28);
    },
    write(_stream, buffer, offset, length) {
      ring?.event(new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length));
      return length;
    },
  });
  fs.mkdev(OUTPUT_DEVICE, 0o222, device);
}

interface Interpreter {
  pyodide: PyodideApi;
  runCell: PyProxyCallable;
  configure: PyProxyCallable;
  applyPermissions: PyProxyCallable;
  takeEvents: PyProxyCallable;
  streams: StreamCapture;
  python: string;
}

const BROKER_DEVICE = '/dev/nbsandbox-net';
/** Room for the largest broker answer: a 16 MiB body in base64 plus headers and framing. */
const BROKER_ANSWER_BYTES = 24 * MiB;
const BROKER_WAIT_MS = 120_000;

let brokerBuffer: SharedArrayBuffer | undefined;
let nextFetchId = 0;

/** One request to the host's broker; blocks this worker until the host answers. */
function askBroker(request: Uint8Array): Uint8Array {
  const failure = (message: string) => new TextEncoder().encode(JSON.stringify({ ok: false, reason: 'failed', message }));
  let parsed: { method?: unknown; url?: unknown; headers?: unknown; body?: unknown };
  try {
    parsed = JSON.parse(new TextDecoder().decode(request)) as typeof parsed;
  } catch {
    return failure('the request is not valid');
  }
  if (typeof parsed.method !== 'string' || typeof parsed.url !== 'string' || typeof parsed.body !== 'string' || !Array.isArray(parsed.headers)) {
    return failure('the request is not valid');
  }
  brokerBuffer ??= new SharedArrayBuffer(BROKER_ANSWER_BYTES);
  const header = new Int32Array(brokerBuffer, 0, 2);
  Atomics.store(header, 0, 0);
  nextFetchId += 1;
  scope.postMessage({
    t: 'fetch',
    id: nextFetchId,
    method: parsed.method,
    url: parsed.url,
    headers: parsed.headers,
    body: parsed.body,
    answerBuffer: brokerBuffer,
  });
  if (Atomics.wait(header, 0, 0, BROKER_WAIT_MS) === 'timed-out') return failure('the broker did not answer');
  return new Uint8Array(brokerBuffer, 8, header[1]).slice();
}

/**
 * The broker as a device file: Python writes a JSON request and reads the JSON answer. Python
 * gets no JavaScript object this way, only bytes.
 */
function installBrokerDevice(pyodide: PyodideApi): void {
  const fs = pyodide.FS;
  const device = fs.makedev(64, 0);
  fs.registerDevice(device, {
    open(stream) {
      stream.nbsRequest = [];
      stream.nbsOffset = 0;
    },
    close(stream) {
      delete stream.nbsRequest;
      delete stream.nbsAnswer;
    },
    write(stream, buffer, offset, length) {
      if (stream.nbsAnswer) throw new fs.ErrnoError(pyodide._module.ERRNO_CODES['EINVAL'] ?? 28);
      stream.nbsRequest?.push(new Uint8Array(buffer.buffer, buffer.byteOffset + offset, length).slice());
      return length;
    },
    read(stream, buffer, offset, length) {
      if (!stream.nbsAnswer) {
        const parts = stream.nbsRequest ?? [];
        const request = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
        let position = 0;
        for (const part of parts) {
          request.set(part, position);
          position += part.length;
        }
        stream.nbsAnswer = askBroker(request);
      }
      const start = stream.nbsOffset ?? 0;
      const chunk = stream.nbsAnswer.subarray(start, start + length);
      buffer.set(new Int8Array(chunk.buffer, chunk.byteOffset, chunk.length), offset);
      stream.nbsOffset = start + chunk.length;
      return chunk.length;
    },
  });
  fs.mkdev(BROKER_DEVICE, 0o666, device);
}

function base64ToBytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let index = 0; index < bytes.length; index += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(index, index + 0x8000));
  }
  return btoa(binary);
}

function placeGrantedFiles(pyodide: PyodideApi, grants: RunGrants): void {
  const fs = pyodide.FS;
  for (const directory of grants.directories) fs.mkdirTree(directory);
  for (const file of grants.files) {
    fs.mkdirTree(file.path.slice(0, file.path.lastIndexOf('/')) || '/');
    fs.writeFile(file.path, base64ToBytes(file.data));
  }
}

/** Sends the regular files under the write roots (symlinks are not followed), within the caps, in pieces. */
function sendWrittenFiles(pyodide: PyodideApi, grants: RunGrants): void {
  const fs = pyodide.FS;
  const seen = new Set<string>();
  let files = 0;
  let bytes = 0;
  let truncated = false;
  const denied = (path: string) => grants.write.deny.some((prefix) => path === prefix || path.startsWith(prefix.replace(/\/?$/, '/')));
  const send = (path: string, content: Uint8Array): void => {
    let offset = 0;
    do {
      const piece = content.subarray(offset, offset + FILE_CHUNK_BYTES);
      offset += piece.length;
      emit({ t: 'file', path, data: bytesToBase64(piece), final: offset >= content.length });
    } while (offset < content.length);
  };
  const visit = (path: string, depth: number): void => {
    if (truncated || seen.has(path) || depth > 64 || denied(path)) return;
    seen.add(path);
    const { mode, size } = fs.lstat(path);
    if (fs.isDir(mode)) {
      for (const name of fs.readdir(path)) if (name !== '.' && name !== '..') visit(`${path === '/' ? '' : path}/${name}`, depth + 1);
    } else if (fs.isFile(mode)) {
      if (files >= grants.writeCaps.maxFiles || bytes + size > grants.writeCaps.maxBytes) {
        truncated = true;
        return;
      }
      files += 1;
      bytes += size;
      send(path, fs.readFile(path));
    }
  };
  for (const root of grants.write.allow) if (fs.analyzePath(root).exists) visit(root, 0);
  emit({ t: 'files', truncated });
}

/** How this process gets its interpreter: a plain start, a restore, or building the snapshot. */
export type SnapshotMode = { readonly kind: 'none' } | { readonly kind: 'load'; readonly url: string } | { readonly kind: 'make'; readonly path: string };

/** The name under which the prepared runtime waits in a snapshot until the host side picks it up. */
const RUNTIME_MODULE = '_nbsandbox_runtime';

// Runtime Python runs in private namespaces, never in the user's __main__.
function privateNamespace(pyodide: PyodideApi): PyNamespace {
  return pyodide.runPython('dict()') as PyNamespace;
}

function runRuntimeFile(pyodide: PyodideApi, wasmDirUrl: string, file: string, title: string): PyNamespace {
  const namespace = privateNamespace(pyodide);
  pyodide.runPython(deno.readTextFileSync(new URL(file, wasmDirUrl)), { globals: namespace, filename: `<nbsandbox ${title}>` });
  return namespace;
}

/**
 * Python-side start-up: the runtime's own modules. Everything done here lives in the wasm heap,
 * so it can be captured in a memory snapshot; nothing here may touch the host. The hardening
 * comes later, in every process, because restoring a snapshot imports Pyodide's own modules,
 * which the hardening blocks.
 */
function preparePython(pyodide: PyodideApi, wasmDirUrl: string): void {
  const load = (file: string, title: string) => runRuntimeFile(pyodide, wasmDirUrl, file, title);
  const runner = load('runner.py', 'runner');
  runner.set('_transform_magics', load('checker/magics.py', 'magics').get('transform'));
  runner.set('_run_awaitable', load('event_loop.py', 'event loop').get('run_awaitable'));
  const permissions = load('permissions.py', 'permissions');
  permissions.get('prepare')();
  const handover = privateNamespace(pyodide);
  for (const [name, from] of [['run_cell', runner], ['configure', runner], ['apply', permissions], ['take_events', permissions]] as const) {
    handover.set(name, from.get(name));
  }
  const holder = privateNamespace(pyodide);
  holder.set('handover', handover);
  pyodide.runPython(`import sys, types\nsys.modules['${RUNTIME_MODULE}'] = types.SimpleNamespace(**handover)`, { globals: holder });
}

/**
 * Start-up done in every process whether it restored a snapshot or not: close the routes to the
 * host, wire the streams, interrupts and broker, give the run fresh randomness (a snapshot
 * freezes the state of `random`), and harden Python last, before any user code.
 */
function attachHost(pyodide: PyodideApi, wasmDirUrl: string, interruptBuffer: Int32Array): Interpreter {
  closeHostRoutes(pyodide);
  pyodide.setInterruptBuffer(interruptBuffer);
  const streams = new StreamCapture(pyodide);
  pyodide.setStdout(streams.writer(0));
  pyodide.setStderr(streams.writer(1));
  installBrokerDevice(pyodide);
  installOutputDevice(pyodide);
  const namespace = privateNamespace(pyodide);
  pyodide.runPython(
    [
      'import os, sys',
      `runtime = sys.modules.pop('${RUNTIME_MODULE}')`,
      'os.chdir("/home/pyodide")',
      "if 'random' in sys.modules: sys.modules['random'].seed()",
      "if 'tempfile' in sys.modules: sys.modules['tempfile']._name_sequence = None",
      'python = sys.version.split()[0]',
    ].join('\n'),
    { globals: namespace },
  );
  runRuntimeFile(pyodide, wasmDirUrl, 'harden.py', 'harden');
  const runtime = namespace.get('runtime') as unknown as { run_cell: PyProxyCallable; configure: PyProxyCallable; apply: PyProxyCallable; take_events: PyProxyCallable };
  return {
    pyodide,
    runCell: runtime.run_cell,
    configure: runtime.configure,
    applyPermissions: runtime.apply,
    takeEvents: runtime.take_events,
    streams,
    python: String(namespace.get('python')),
  };
}

/**
 * Reads a file straight into one JavaScript buffer. `Deno.readFileSync` goes through a native
 * buffer of the same size first, which the allocator keeps: 30 MiB of idle memory per process.
 */
function readWhole(url: URL): Uint8Array {
  const file = deno.openSync(url);
  try {
    const bytes = new Uint8Array(file.statSync().size);
    let filled = 0;
    while (filled < bytes.length) {
      const read = file.readSync(bytes.subarray(filled));
      if (read === null || read === 0) throw new Error('the snapshot ended early');
      filled += read;
    }
    return bytes;
  } finally {
    file.close();
  }
}

/**
 * The snapshot's bytes are garbage once restored, but an idle process would keep them until
 * its next collection, which may never come; collect now (the process starts with --expose-gc).
 * `gc` stays defined (V8 makes it non-configurable); it only starts a collection, and Python
 * has no way to reach JavaScript globals.
 */
function releaseSnapshotBuffer(pyodide: PyodideApi): void {
  // Pyodide keeps its load options, the snapshot's bytes among them.
  if (pyodide._api?.config) pyodide._api.config._loadSnapshot = undefined;
  (globalThis as { gc?: () => void }).gc?.();
}

async function start(
  pyodideDirUrl: string,
  wasmDirUrl: string,
  packageDirUrl: string | null,
  snapshot: SnapshotMode,
  interruptBuffer: Int32Array,
): Promise<Interpreter | null> {
  const startedAt = performance.now();
  capMemoryGrowth();
  const { loadPyodide } = (await import(new URL('pyodide.mjs', pyodideDirUrl).href)) as { loadPyodide: LoadPyodide };
  const pyodide = await loadPyodide({
    // Under Deno, Pyodide reads its files by path.
    indexURL: decodeURIComponent(new URL(pyodideDirUrl).pathname),
    // Packages come only from the operator's directory; a package missing there would be
    // downloaded, which the process's permissions refuse.
    ...(packageDirUrl
      ? {
          lockFileURL: decodeURIComponent(new URL('pyodide-lock.json', packageDirUrl).pathname),
          packageCacheDir: decodeURIComponent(new URL(packageDirUrl).pathname),
        }
      : {}),
    ...(snapshot.kind === 'make' ? { _makeSnapshot: true } : {}),
    ...(snapshot.kind === 'load' ? { _loadSnapshot: readWhole(new URL(snapshot.url)) } : {}),
    jsglobals: Object.create(null),
    env: {},
    stdin: () => null,
    fullStdLib: false,
  });
  if (snapshot.kind === 'load') releaseSnapshotBuffer(pyodide);
  else preparePython(pyodide, wasmDirUrl);
  if (snapshot.kind === 'make') {
    deno.writeFileSync(snapshot.path, pyodide.makeMemorySnapshot());
    emit({ t: 'snapshot', pyodide: pyodide.version, buildMs: Math.round(performance.now() - startedAt) });
    return null;
  }
  const interpreter = attachHost(pyodide, wasmDirUrl, interruptBuffer);
  emit({
    t: 'ready',
    python: interpreter.python,
    pyodide: pyodide.version,
    startupMs: Math.round(performance.now() - startedAt),
    snapshot: snapshot.kind === 'load',
  });
  return interpreter;
}

function forwardAuditEvents(interpreter: Interpreter): void {
  const events = JSON.parse(String(interpreter.takeEvents())) as unknown[];
  if (events.length > 0) emit({ t: 'audit', events });
}

/** Installs the granted packages from the operator's package directory (integrity checked). */
async function loadGrantedPackages(interpreter: Interpreter, packages: readonly string[]): Promise<void> {
  if (packages.length === 0) return;
  const problems: string[] = [];
  await interpreter.pyodide.loadPackage([...packages], {
    messageCallback: () => undefined,
    errorCallback: (message) => problems.push(message),
    checkIntegrity: true,
  });
  if (problems.length > 0) {
    interpreter.pyodide.runPython(`import sys\nsys.stderr.write(${JSON.stringify(`nbsandbox: some granted packages could not be loaded: ${packages.join(', ')}\n`)})`, {
      globals: privateNamespace(interpreter.pyodide),
    });
  }
}

/** What run_cell reports when Python itself failed to (the exception escaped the runner). */
function escapedError(error: unknown, index: number): void {
  const ename = typeof (error as { type?: unknown })?.type === 'string' ? String((error as { type: string }).type).slice(0, 256) : 'SystemError';
  emit({ t: 'output', index, output: { output_type: 'error', ename, evalue: '', traceback: [] } });
}

async function runCells(interpreter: Interpreter, cells: readonly CellSource[], limits: RunLimits, grants: RunGrants): Promise<void> {
  const { pyodide, runCell, configure, streams } = interpreter;
  const first = cells[0];
  // Anything written while the run is prepared (package notes) belongs to the first cell.
  if (first) {
    streams.cell = first.index;
    emit({ t: 'start', index: first.index });
  }
  streams.open(limits.maxOutputBytes);
  configure(JSON.stringify({ maxOutputBytes: limits.maxOutputBytes, maxResultBytes: limits.maxResultBytes, outputDevice: OUTPUT_DEVICE }));
  placeGrantedFiles(pyodide, grants);
  await loadGrantedPackages(interpreter, grants.packages);
  interpreter.applyPermissions(
    JSON.stringify({ read: grants.read, write: grants.write, imports: grants.imports, env: grants.env }),
  );
  forwardAuditEvents(interpreter);
  memoryCapBytes = limits.memoryMb * MiB;
  let executionCount = 0;
  for (const cell of cells) {
    executionCount += 1;
    if (cell !== first) {
      streams.cell = cell.index;
      emit({ t: 'start', index: cell.index });
    }
    let status: 'ok' | 'error' = 'error';
    let truncated = false;
    try {
      const result = JSON.parse(String(runCell(cell.index, cell.source, executionCount))) as { status: 'ok' | 'error'; truncated: boolean };
      status = result.status;
      truncated = result.truncated;
    } catch (error) {
      escapedError(error, cell.index);
    }
    forwardAuditEvents(interpreter);
    emit({ t: 'end', index: cell.index, status, truncated: truncated || streams.limitHit });
    if (status !== 'ok' || streams.limitHit) break;
  }
  if (grants.write.allow.length > 0) sendWrittenFiles(pyodide, grants);
  emit({ t: 'done' });
}

let interpreter: Promise<Interpreter | null> | undefined;

interface InitMessage {
  readonly t: 'init';
  readonly pyodideDirUrl: string;
  readonly wasmDirUrl: string;
  readonly packageDirUrl: string | null;
  readonly snapshot: SnapshotMode;
  readonly interruptBuffer: Int32Array;
  readonly ringBuffer: SharedArrayBuffer;
}

scope.onmessage = (event: MessageEvent) => {
  const message = event.data as InitMessage | { t: 'run'; cells: CellSource[]; limits: RunLimits; grants: RunGrants };
  if (message.t === 'init') {
    ring = new RingWriter(message.ringBuffer, () => scope.postMessage({ t: 'drain' }));
    interpreter = start(message.pyodideDirUrl, message.wasmDirUrl, message.packageDirUrl, message.snapshot, message.interruptBuffer);
    interpreter.catch((error: unknown) => emit({ t: 'fatal', message: `start-up failed: ${String(error)}` }));
    return;
  }
  if (!interpreter) {
    emit({ t: 'fatal', message: 'run before start-up' });
    return;
  }
  interpreter
    .then((ready) => {
      if (!ready) throw new Error('this process only builds a snapshot');
      return runCells(ready, message.cells, message.limits, message.grants);
    })
    .catch((error: unknown) => emit({ t: 'fatal', message: `interpreter died: ${String(error)}` }));
};
