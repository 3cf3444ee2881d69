/**
 * Entry point of a sandbox process, run by Deno under deny-by-default permissions.
 * This thread owns the message channel to the host and the interrupt buffer; Python runs in a
 * Worker so that this thread stays responsive while user code is busy.
 */
import { deno, type WorkerConstructor } from './deno-api.js';
import type { HostMessage } from '../protocol.js';
import type { SnapshotMode } from './interpreter.js';

// stdout carries the protocol: nothing else may write to it.
console.log = console.info = console.debug = console.warn = console.error;

const [pyodideDirUrl, wasmDirUrl, packageDirUrl, snapshotArgument, testModuleUrl] = deno.args;

/** `-`: plain start; `load:<file URL>`: restore a snapshot; `make:<path>`: build one and exit. */
function snapshotMode(argument: string | undefined): SnapshotMode {
  if (argument?.startsWith('load:')) return { kind: 'load', url: argument.slice(5) };
  if (argument?.startsWith('make:')) return { kind: 'make', path: argument.slice(5) };
  return { kind: 'none' };
}

const encoder = new TextEncoder();

function send(message: unknown): void {
  const bytes = encoder.encode(JSON.stringify(message) + '\n');
  let offset = 0;
  while (offset < bytes.length) offset += deno.stdout.writeSync(bytes.subarray(offset));
}

function die(message: string): never {
  send({ t: 'fatal', message });
  return deno.exit(70);
}

const interruptBuffer = new Int32Array(new SharedArrayBuffer(4));
const WorkerClass = (globalThis as unknown as { Worker: WorkerConstructor }).Worker;
const interpreter = new WorkerClass(new URL('./interpreter.js', import.meta.url), { type: 'module' });

/**
 * Broker requests: the interpreter blocks on a shared buffer while this thread asks the host.
 * Layout: int32 state (0 waiting, 1 answered), int32 byte length, then the answer as JSON.
 */
const waitingFetches = new Map<number, SharedArrayBuffer>();

function answerFetch(id: number, answer: unknown): void {
  const buffer = waitingFetches.get(id);
  if (!buffer) die('host answered a request nobody made');
  waitingFetches.delete(id);
  let bytes = encoder.encode(JSON.stringify(answer));
  if (bytes.length > buffer.byteLength - 8) {
    bytes = encoder.encode(JSON.stringify({ ok: false, reason: 'too-large', message: 'the response is larger than allowed' }));
  }
  const header = new Int32Array(buffer, 0, 2);
  new Uint8Array(buffer, 8, bytes.length).set(bytes);
  header[1] = bytes.length;
  Atomics.store(header, 0, 1);
  Atomics.notify(header, 0);
}

interpreter.onmessage = (event) => {
  const data = event.data as { t?: string; id?: number; answerBuffer?: SharedArrayBuffer };
  if (data.t === 'fetch' && typeof data.id === 'number' && data.answerBuffer instanceof SharedArrayBuffer) {
    const { answerBuffer, ...request } = data;
    waitingFetches.set(data.id, answerBuffer);
    send(request);
    return;
  }
  send(event.data);
};
interpreter.onerror = (event) => {
  event.preventDefault();
  die(`interpreter failed: ${String(event.message)}`);
};
interpreter.postMessage({
  t: 'init',
  pyodideDirUrl,
  wasmDirUrl,
  packageDirUrl: packageDirUrl === '-' ? null : packageDirUrl,
  snapshot: snapshotMode(snapshotArgument),
  interruptBuffer,
});

/** Test-only: the host started this process with a probe module that tries to reach the host. */
async function probe(params: Record<string, string>): Promise<void> {
  if (!testModuleUrl) die('no probe module in this sandbox');
  const module = (await import(testModuleUrl)) as { probe(params: Record<string, string>): Promise<Record<string, string>> };
  send({ t: 'probe', results: await module.probe(params) });
}

function handle(message: HostMessage): void {
  switch (message.t) {
    case 'run':
      interpreter.postMessage(message);
      return;
    case 'interrupt':
      Atomics.store(interruptBuffer, 0, 2);
      return;
    case 'fetched':
      answerFetch(message.id, message.answer);
      return;
    case 'probe':
      probe({ ...message.params }).catch((error: unknown) => die(`probe failed: ${String(error)}`));
      return;
  }
}

function isHostMessage(value: unknown): value is HostMessage {
  if (typeof value !== 'object' || value === null) return false;
  const t = (value as { t?: unknown }).t;
  if (t === 'interrupt') return true;
  if (t === 'fetched') {
    const { id, answer } = value as { id?: unknown; answer?: unknown };
    return Number.isInteger(id) && typeof answer === 'object' && answer !== null;
  }
  if (t === 'probe') return typeof (value as { params?: unknown }).params === 'object';
  if (t !== 'run') return false;
  const { cells, limits, grants } = value as { cells?: unknown; limits?: Record<string, unknown>; grants?: unknown };
  return (
    typeof grants === 'object' &&
    grants !== null &&
    Array.isArray(cells) &&
    cells.every((cell) => typeof cell?.source === 'string' && Number.isInteger(cell?.index)) &&
    typeof limits === 'object' &&
    limits !== null &&
    ['memoryMb', 'maxOutputBytes', 'maxResultBytes'].every((key) => Number.isFinite(limits[key]))
  );
}

async function readHost(): Promise<void> {
  let pending = '';
  for await (const chunk of deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        die('host sent a line that is not JSON');
      }
      if (!isHostMessage(message)) die('host sent an unknown message');
      handle(message);
    }
  }
  // The host closed the channel: nothing left to do.
  deno.exit(0);
}

readHost().catch((error: unknown) => die(`channel failed: ${String(error)}`));
