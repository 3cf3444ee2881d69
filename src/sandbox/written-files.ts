/**
 * Files a run wrote under its `write` grants, as they arrive in pieces from the sandbox process.
 * The caps are applied while receiving, so a sandbox that lies about its files cannot make the
 * host hold more than the grants allow.
 */
export interface WriteCaps {
  readonly maxFiles: number;
  readonly maxBytes: number;
}

interface Receiving {
  readonly path: string;
  readonly parts: Buffer[];
  bytes: number;
  dropped: boolean;
}

export class WrittenFiles {
  private readonly done: { path: string; bytes: Uint8Array }[] = [];
  private current: Receiving | undefined;
  private totalBytes = 0;
  private files = 0;
  private truncatedFlag = false;

  constructor(private readonly caps: WriteCaps) {}

  /** One piece of a file; false when the pieces do not follow the protocol (a file interleaved with another). */
  piece(path: string, base64: string, final: boolean): boolean {
    if (this.current && this.current.path !== path) return false;
    if (!this.current) {
      const dropped = this.files >= this.caps.maxFiles;
      if (!dropped) this.files += 1;
      this.current = { path, parts: [], bytes: 0, dropped };
    }
    const receiving = this.current;
    if (!receiving.dropped) {
      const bytes = Buffer.from(base64, 'base64');
      if (this.totalBytes + bytes.length > this.caps.maxBytes) {
        receiving.dropped = true;
        receiving.parts.length = 0;
        this.totalBytes -= receiving.bytes;
        this.files -= 1;
      } else {
        receiving.parts.push(bytes);
        receiving.bytes += bytes.length;
        this.totalBytes += bytes.length;
      }
    }
    if (final) {
      if (receiving.dropped) this.truncatedFlag = true;
      else this.done.push({ path, bytes: Buffer.concat(receiving.parts, receiving.bytes) });
      this.current = undefined;
    }
    return true;
  }

  /** The complete files received, and whether any was left out (here or by the sandbox). */
  finish(sandboxTruncated: boolean): { files: { path: string; bytes: Uint8Array }[]; truncated: boolean } {
    return { files: this.done, truncated: this.truncatedFlag || sandboxTruncated || this.current !== undefined };
  }
}
