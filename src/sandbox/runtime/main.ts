/**
 * Entry point of a sandbox process, run by Deno under deny-by-default permissions.
 * This thread owns the message channel to the host and the interrupt buffer; Python runs in a
 * Worker so that this thread stays responsive while user code is busy.
 */
import { deno, type WorkerConstructor } from './deno-api.js';
import type { HostMessage } from '../protocol.js';
import type { SnapshotMode } from './interpreter.js';
import { RECORD_EVENT, RECORD_EVENT_PART, RECORD_STREAM, RingReader, STREAM_NAMES, createRingBuffer, type RingRecord } from './ring.js';
import { RING_BYTES, STREAM_LINE_CHARS } from './wire-sizes.js';

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
const NEWLINE = new Uint8Array([0x0a]);

function writeAll(bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += deno.stdout.writeSync(bytes.subarray(offset));
}

function send(message: unknown): void {
  writeAll(encoder.encode(JSON.stringify(message) + '\n'));
}

/** How often the ring is emptied while the interpreter runs: the delay before output shows. */
const PUMP_INTERVAL_MS = 10;

const ringBuffer = createRingBuffer(RING_BYTES);
const ring = new RingReader(ringBuffer);
const decoders = STREAM_NAMES.map(() => new TextDecoder());
let pendingStream: { stream: number; cell: number; text: string } | undefined;
let eventParts: Uint8Array[] = [];

function flushStream(): void {
  if (!pendingStream) return;
  const { stream, cell, text } = pendingStream;
  pendingStream = undefined;
  if (text !== '') send({ t: 'stream', index: cell, name: STREAM_NAMES[stream], text });
}

function onRecord(record: RingRecord): void {
  if (record.kind === RECORD_STREAM) {
    const decoder = decoders[record.stream];
    if (!decoder) return;
    if (pendingStream && (pendingStream.stream !== record.stream || pendingStream.cell !== record.cell)) flushStream();
    const text = decoder.decode(record.payload, { stream: true });
    pendingStream = pendingStream ? { ...pendingStream, text: pendingStream.text + text } : { stream: record.stream, cell: record.cell, text };
    if (pendingStream.text.length >= STREAM_LINE_CHARS) flushStream();
    return;
  }
  if (record.kind === RECORD_EVENT_PART) {
    eventParts.push(record.payload);
    return;
  }
  if (record.kind === RECORD_EVENT) {
    flushStream();
    for (const part of eventParts) writeAll(part);
    eventParts = [];
    writeAll(record.payload);
    writeAll(NEWLINE);
  }
}

/** Moves everything the interpreter has written so far to the host. */
function pump(): void {
  ring.drain(onRecord);
  flushStream();
}

setInterval(pump, PUMP_INTERVAL_MS);

function die(message: string): never {
  pump();
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
  if (data.t === 'drain') {
    pump();
    return;
  }
  if (data.t === 'fetch' && typeof data.id === 'number' && data.answerBuffer instanceof SharedArrayBuffer) {
    const { answerBuffer, ...request } = data;
    waitingFetches.set(data.id, answerBuffer);
    pump();
    send(request);
  }
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
  ringBuffer,
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

function handleLine(line: string): void {
  let message: unknown;
  try {
    message = JSON.parse(line);
  } catch {
    die('host sent a line that is not JSON');
  }
  if (!isHostMessage(message)) die('host sent an unknown message');
  handle(message);
}

async function readHost(): Promise<void> {
  // Each chunk is searched once; a line spread over many chunks is joined once (linear time).
  let parts: string[] = [];
  for await (const chunk of deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    let start = 0;
    let newline: number;
    while ((newline = chunk.indexOf('\n', start)) >= 0) {
      parts.push(chunk.slice(start, newline));
      const line = parts.join('');
      parts = [];
      start = newline + 1;
      handleLine(line);
    }
    if (start < chunk.length) parts.push(chunk.slice(start));
  }
  // The host closed the channel: nothing left to do.
  pump();
  deno.exit(0);
}

readHost().catch((error: unknown) => die(`channel failed: ${String(error)}`));
