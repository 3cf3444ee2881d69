/**
 * The host's own record of one run: what each cell started, wrote and ended with, kept within
 * caps the host enforces itself. Nothing the sandbox process says is trusted: cells must start
 * and end in order, streams and outputs belong to the running cell, and every byte is counted
 * against the caps whatever the interpreter's own (tamperable) limits let through.
 */
import type { CellSource, NotebookOutput } from './protocol.js';
import type { CellResult } from './types.js';

export interface OutputCaps {
  /** stdout and stderr, each, for the whole run. */
  readonly maxOutputBytes: number;
  /** One result text or error message; a traceback gets two of these. */
  readonly maxResultBytes: number;
  /** Everything the run's outputs hold together. */
  readonly maxRunOutputBytes: number;
  /** Outputs of the whole run (consecutive writes to one stream are one output). */
  readonly maxOutputs: number;
}

/** Why the host stops a run while it is reading it. */
export interface Stop {
  readonly kind: 'protocol' | 'limit';
  readonly detail: string;
}

type StreamName = 'stdout' | 'stderr';
type Kept = { readonly kind: 'stream'; readonly name: StreamName; readonly parts: string[] } | { readonly kind: 'output'; readonly output: NotebookOutput };

interface CellRecord {
  readonly source: CellSource;
  readonly kept: Kept[];
  status: 'pending' | 'running' | 'ok' | 'error';
}

export type CellEvent =
  | { readonly t: 'start'; readonly index: number }
  | { readonly t: 'stream'; readonly index: number; readonly name: StreamName; readonly text: string }
  | { readonly t: 'output'; readonly index: number; readonly output: Exclude<NotebookOutput, { output_type: 'stream' }> }
  | { readonly t: 'end'; readonly index: number; readonly status: 'ok' | 'error'; readonly truncated: boolean }
  | { readonly t: 'limit'; readonly stream: StreamName };

/** `text` cut to at most `maxBytes` of UTF-8, never inside a character. */
export function capUtf8(text: string, maxBytes: number): { text: string; cut: boolean } {
  // A string of n UTF-16 units is at most 3n bytes, so short strings need no encoding.
  if (text.length * 3 <= maxBytes) return { text, cut: false };
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text, cut: false };
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1;
  return { text: bytes.subarray(0, end).toString('utf8'), cut: true };
}

/**
 * What a text costs in the result the host builds and sends: its JSON form, where one control
 * character takes six bytes. The run's total is counted this way, so the answer stays within it.
 */
function encodedBytes(text: string): number {
  return Buffer.byteLength(JSON.stringify(text));
}

function outputBytes(output: NotebookOutput): number {
  switch (output.output_type) {
    case 'stream':
      return encodedBytes(output.text);
    case 'execute_result':
      return encodedBytes(output.data['text/plain']);
    case 'error':
      return encodedBytes(output.ename) + encodedBytes(output.evalue) + output.traceback.reduce((total, line) => total + encodedBytes(line), 0);
  }
}

export class RunRecord {
  private readonly cells: CellRecord[];
  private readonly byIndex = new Map<number, CellRecord>();
  private next = 0;
  private current: CellRecord | undefined;
  private readonly streamBytes = { stdout: 0, stderr: 0 };
  private runBytes = 0;
  private outputs = 0;
  private limits = 0;
  private truncatedFlag = false;
  /** The stream whose cap stopped the run, inside the sandbox or here. */
  private limitedStream: StreamName | undefined;
  private limitDetail: string | undefined;

  constructor(
    sources: readonly CellSource[],
    private readonly caps: OutputCaps,
  ) {
    this.cells = sources.map((source) => ({ source, kept: [], status: 'pending' }));
    for (const cell of this.cells) this.byIndex.set(cell.source.index, cell);
  }

  /** Takes one event of the run; returns why the run must stop, or null. */
  accept(event: CellEvent): Stop | null {
    switch (event.t) {
      case 'start': {
        const expected = this.cells[this.next];
        if (this.current || !expected || expected.source.index !== event.index) return { kind: 'protocol', detail: 'a cell started out of order' };
        this.next += 1;
        expected.status = 'running';
        this.current = expected;
        return null;
      }
      case 'end': {
        const cell = this.running(event.index);
        if (!cell) return { kind: 'protocol', detail: 'a cell ended that was not running' };
        cell.status = event.status;
        this.truncatedFlag ||= event.truncated;
        this.current = undefined;
        return null;
      }
      case 'stream': {
        const cell = this.running(event.index);
        if (!cell) return { kind: 'protocol', detail: 'output for a cell that is not running' };
        return this.keepStream(cell, event.name, event.text);
      }
      case 'output': {
        const cell = this.running(event.index);
        if (!cell) return { kind: 'protocol', detail: 'output for a cell that is not running' };
        return this.keepOutput(cell, this.clamped(event.output));
      }
      case 'limit':
        this.limits += 1;
        if (this.limits > 2) return { kind: 'protocol', detail: 'a stream reached its limit more than once' };
        this.truncatedFlag = true;
        this.limitedStream ??= event.stream;
        return null;
    }
  }

  /** Why the sandbox's "done" cannot be true (a cell still running, cells left after a success), or null. */
  doneProblem(): string | null {
    if (this.current) return 'the sandbox said it was done in the middle of a cell';
    const last = this.cells[this.next - 1];
    const stoppedEarly = last?.status === 'error' || this.limitedStream !== undefined;
    if (this.next < this.cells.length && !stoppedEarly) return 'the sandbox said it was done before every cell ran';
    return null;
  }

  /** The cell that was running when the run ended, if one was. */
  get runningCell(): CellSource | undefined {
    return this.current?.source;
  }

  /** Set when a cap stopped the run (here or inside the sandbox), with what was exceeded. */
  get outputLimit(): string | undefined {
    if (this.limitDetail) return this.limitDetail;
    return this.limitedStream ? `${this.limitedStream} exceeded ${this.caps.maxOutputBytes} bytes` : undefined;
  }

  /** Each cell with its outputs; cells after the one the run ended on are `skipped`. */
  results(): { cells: CellResult[]; stdout: string; stderr: string; truncated: boolean; endedOn: { ename: string; evalue: string } | undefined } {
    const streams: Record<StreamName, string[]> = { stdout: [], stderr: [] };
    const cells: CellResult[] = [];
    let executionCount = 0;
    let endedOn: { ename: string; evalue: string } | undefined;
    for (const cell of this.cells) {
      const id = cell.source.id !== undefined ? { id: cell.source.id } : {};
      const outputs = cell.kept.map((kept): NotebookOutput => {
        if (kept.kind === 'output') return kept.output;
        // One part at a time: a run may send hundreds of thousands of them.
        for (const part of kept.parts) streams[kept.name].push(part);
        return { output_type: 'stream', name: kept.name, text: kept.parts.join('') };
      });
      const ran = cell.status !== 'pending';
      if (ran) executionCount += 1;
      const status = cell.status === 'pending' ? 'skipped' : cell.status === 'running' ? 'interrupted' : cell.status;
      cells.push({ index: cell.source.index, ...id, status, executionCount: ran ? executionCount : null, outputs });
      if (cell.status === 'error') {
        const error = outputs.findLast((output) => output.output_type === 'error');
        endedOn = error?.output_type === 'error' ? { ename: error.ename, evalue: error.evalue } : undefined;
      }
    }
    return { cells, stdout: streams.stdout.join(''), stderr: streams.stderr.join(''), truncated: this.truncatedFlag, endedOn };
  }

  private running(index: number): CellRecord | undefined {
    return this.current && this.current.source.index === index ? this.current : undefined;
  }

  private stopForLimit(detail: string): Stop {
    this.truncatedFlag = true;
    this.limitDetail ??= detail;
    return { kind: 'limit', detail };
  }

  private keepStream(cell: CellRecord, name: StreamName, text: string): Stop | null {
    const roomInStream = this.caps.maxOutputBytes - this.streamBytes[name];
    const roomInRun = this.caps.maxRunOutputBytes - this.runBytes;
    let { text: kept, cut } = capUtf8(text, Math.max(0, roomInStream));
    // The run's total counts the text as it will be sent (escaped): cut to what still fits.
    let encoded = encodedBytes(kept);
    let runFull = false;
    while (encoded > roomInRun && kept !== '') {
      kept = capUtf8(kept, Math.max(0, Math.floor(Buffer.byteLength(kept) * (roomInRun / encoded)) - 8)).text;
      encoded = encodedBytes(kept);
      cut = runFull = true;
    }
    const last = cell.kept.at(-1);
    const appends = last?.kind === 'stream' && last.name === name;
    if (!appends && kept !== '' && this.outputs >= this.caps.maxOutputs) return this.stopForLimit(`the run has more than ${this.caps.maxOutputs} outputs`);
    if (kept !== '') {
      this.streamBytes[name] += Buffer.byteLength(kept);
      this.runBytes += encoded;
      if (appends) last.parts.push(kept);
      else {
        cell.kept.push({ kind: 'stream', name, parts: [kept] });
        this.outputs += 1;
      }
    }
    if (!cut) return null;
    return this.stopForLimit(runFull ? `the run's outputs exceeded ${this.caps.maxRunOutputBytes} bytes` : `${name} exceeded ${this.caps.maxOutputBytes} bytes`);
  }

  private keepOutput(cell: CellRecord, output: NotebookOutput): Stop | null {
    if (this.outputs >= this.caps.maxOutputs) return this.stopForLimit(`the run has more than ${this.caps.maxOutputs} outputs`);
    const bytes = outputBytes(output);
    if (this.runBytes + bytes > this.caps.maxRunOutputBytes) return this.stopForLimit(`the run's outputs exceeded ${this.caps.maxRunOutputBytes} bytes`);
    this.runBytes += bytes;
    this.outputs += 1;
    cell.kept.push({ kind: 'output', output });
    return null;
  }

  /** A result or error within its caps, whatever size the sandbox sent. */
  private clamped(output: Exclude<NotebookOutput, { output_type: 'stream' }>): NotebookOutput {
    const cap = this.caps.maxResultBytes;
    // The sandbox marks its own cut with one character after the cap.
    const allowance = cap + 4;
    const clamp = (text: string, max: number) => {
      const capped = capUtf8(text, max);
      this.truncatedFlag ||= capped.cut;
      return capped.text;
    };
    if (output.output_type === 'execute_result') {
      return { ...output, data: { 'text/plain': clamp(output.data['text/plain'], allowance) } };
    }
    let room = 2 * cap;
    const traceback: string[] = [];
    for (const line of output.traceback) {
      const kept = clamp(line, Math.max(0, Math.min(cap, room)));
      if (kept !== line) this.truncatedFlag = true;
      if (kept === '') break;
      traceback.push(kept);
      room -= Buffer.byteLength(kept);
    }
    return { output_type: 'error', ename: clamp(output.ename, 256), evalue: clamp(output.evalue, allowance), traceback };
  }
}
