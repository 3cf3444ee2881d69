/**
 * Splits a byte stream into newline-terminated lines in linear time: each chunk is scanned once,
 * from where the previous scan stopped, and a partial line is kept as a list of chunks until its
 * newline arrives. A line longer than `maxLineBytes` is refused as soon as it is known to be too
 * long, before it is held in memory. Works on bytes, so no UTF-8 character is ever split.
 */
const NEWLINE = 0x0a;

export class LineReader {
  private parts: Buffer[] = [];
  private partBytes = 0;
  private failed = false;

  constructor(
    /** May be changed between chunks; a partial line already held counts against the new value. */
    public maxLineBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onTooLong: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (!this.failed && start < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline < 0 ? chunk.length : newline;
      if (this.partBytes + (end - start) > this.maxLineBytes) {
        this.stop();
        this.onTooLong();
        return;
      }
      if (newline < 0) {
        this.parts.push(chunk.subarray(start));
        this.partBytes += chunk.length - start;
        return;
      }
      const piece = chunk.subarray(start, newline);
      const line = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece], this.partBytes + piece.length);
      this.parts = [];
      this.partBytes = 0;
      start = newline + 1;
      this.onLine(line);
    }
  }

  /** Stops reading: everything after this is ignored. */
  stop(): void {
    this.failed = true;
    this.parts = [];
    this.partBytes = 0;
  }
}
