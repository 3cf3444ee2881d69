/**
 * The ordered channel from the interpreter Worker to the main thread of a sandbox process: a
 * single-producer, single-consumer byte ring in shared memory.
 *
 * Python runs synchronously in the Worker, so the Worker's event loop is blocked while user code
 * runs and it cannot batch output on a timer. The Worker therefore appends each write to the
 * ring (a copy, no message), and the main thread, whose event loop stays free, drains the ring
 * every few milliseconds and turns many small writes into a few protocol lines. Streams and
 * events share the ring, so their order is kept. When the ring is full the Worker waits for the
 * main thread to drain it.
 *
 * Record layout: u32 payload length, u8 kind, u8 stream, u16 zero, u32 cell index, payload.
 */

export const RECORD_STREAM = 1;
/** The last (or only) part of one JSON event. */
export const RECORD_EVENT = 2;
/** A part of a JSON event too large for one record; more parts follow. */
export const RECORD_EVENT_PART = 3;

export const STREAM_NAMES = ['stdout', 'stderr'] as const;
export type StreamName = (typeof STREAM_NAMES)[number];

const HEADER_WORDS = 4;
const WRITE = 0;
const READ = 1;
const RECORD_HEADER = 12;
/** Wait at most this long for room before checking again (the main thread may be slow, not gone). */
const FULL_WAIT_MS = 50;

export interface RingRecord {
  readonly kind: number;
  readonly stream: number;
  readonly cell: number;
  readonly payload: Uint8Array;
}

/** Shared memory for a ring with `capacity` bytes of data (a power of two). */
export function createRingBuffer(capacity: number): SharedArrayBuffer {
  if (capacity < 4096 || (capacity & (capacity - 1)) !== 0) throw new Error('ring capacity must be a power of two of at least 4096');
  return new SharedArrayBuffer(HEADER_WORDS * 4 + capacity);
}

class Ring {
  protected readonly header: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly mask: number;

  constructor(buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.data = new Uint8Array(buffer, HEADER_WORDS * 4);
    this.mask = this.data.length - 1;
  }

  /** Bytes written and not yet read; positions are free-running 32-bit counters. */
  protected used(): number {
    return (Atomics.load(this.header, WRITE) - Atomics.load(this.header, READ)) >>> 0;
  }
}

export class RingWriter extends Ring {
  private readonly scratch = new Uint8Array(RECORD_HEADER);
  private readonly scratchView = new DataView(this.scratch.buffer);
  /** Largest payload of one record, so a record never needs more than a quarter of the ring. */
  readonly maxPayload: number;

  constructor(
    buffer: SharedArrayBuffer,
    /** Called before waiting for room, so the reader can be asked to drain now. */
    private readonly onFull: () => void = () => undefined,
  ) {
    super(buffer);
    this.maxPayload = this.data.length / 4 - RECORD_HEADER;
  }

  /** Appends a stream write; large writes become several records. */
  stream(stream: number, cell: number, bytes: Uint8Array): void {
    for (let offset = 0; offset < bytes.length; offset += this.maxPayload) {
      this.record(RECORD_STREAM, stream, cell, bytes.subarray(offset, offset + this.maxPayload));
    }
  }

  /** Appends one JSON event (without its newline), in parts when it is large. */
  event(json: Uint8Array): void {
    let offset = 0;
    while (json.length - offset > this.maxPayload) {
      this.record(RECORD_EVENT_PART, 0, 0, json.subarray(offset, offset + this.maxPayload));
      offset += this.maxPayload;
    }
    this.record(RECORD_EVENT, 0, 0, json.subarray(offset));
  }

  private record(kind: number, stream: number, cell: number, payload: Uint8Array): void {
    const size = RECORD_HEADER + payload.length;
    while (this.data.length - this.used() < size) {
      this.onFull();
      Atomics.wait(this.header, READ, Atomics.load(this.header, READ), FULL_WAIT_MS);
    }
    this.scratchView.setUint32(0, payload.length, true);
    this.scratchView.setUint8(4, kind);
    this.scratchView.setUint8(5, stream);
    this.scratchView.setUint32(8, cell >>> 0, true);
    const start = Atomics.load(this.header, WRITE) >>> 0;
    this.copyIn(start, this.scratch);
    this.copyIn(start + RECORD_HEADER, payload);
    Atomics.store(this.header, WRITE, (start + size) | 0);
  }

  private copyIn(position: number, bytes: Uint8Array): void {
    const at = position & this.mask;
    const first = Math.min(bytes.length, this.data.length - at);
    this.data.set(bytes.subarray(0, first), at);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
  }
}

export class RingReader extends Ring {
  /** Takes every complete record written so far, in order. */
  drain(onRecord: (record: RingRecord) => void): void {
    let read = Atomics.load(this.header, READ) >>> 0;
    const write = Atomics.load(this.header, WRITE) >>> 0;
    while (((write - read) >>> 0) >= RECORD_HEADER) {
      const header = this.copyOut(read, RECORD_HEADER);
      const view = new DataView(header.buffer);
      const length = view.getUint32(0, true);
      const record = {
        kind: view.getUint8(4),
        stream: view.getUint8(5),
        cell: view.getUint32(8, true),
        payload: this.copyOut(read + RECORD_HEADER, length),
      };
      read = (read + RECORD_HEADER + length) >>> 0;
      // Free the room before handling the record, so a waiting writer can go on.
      Atomics.store(this.header, READ, read | 0);
      Atomics.notify(this.header, READ);
      onRecord(record);
    }
  }

  private copyOut(position: number, length: number): Uint8Array {
    const at = position & this.mask;
    const out = new Uint8Array(length);
    const first = Math.min(length, this.data.length - at);
    out.set(this.data.subarray(at, at + first));
    if (first < length) out.set(this.data.subarray(0, length - first), first);
    return out;
  }
}
