/**
 * A bounded LRU of checker answers keyed by the sha256 of the whole check request (the code and
 * every policy field the checker reads), so a notebook checked before under the same policy
 * answers at once. The ruleset cannot change under a running checker (its rules are loaded
 * when its workers start), so entries never go stale within a process; a new process or a new
 * ruleset starts empty.
 */
import { createHash } from 'node:crypto';

export interface VerdictCacheOptions {
  /** Default 10,000. */
  readonly maxEntries?: number;
  /** Budget for the cached answers, counted as UTF-16 string bytes. Default 64 MiB. */
  readonly maxBytes?: number;
}

export class VerdictCache {
  private readonly entries = new Map<string, string>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  hits = 0;
  misses = 0;

  constructor(options: VerdictCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  }

  static keyOf(request: string): string {
    return createHash('sha256').update(request).digest('hex');
  }

  get(key: string): string | undefined {
    const answer = this.entries.get(key);
    if (answer === undefined) {
      this.misses += 1;
      return undefined;
    }
    this.hits += 1;
    // Most recently used goes last.
    this.entries.delete(key);
    this.entries.set(key, answer);
    return answer;
  }

  set(key: string, answer: string): void {
    const size = answer.length * 2;
    if (size > this.maxBytes / 4) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) {
      this.entries.delete(key);
      this.bytes -= previous.length * 2;
    }
    this.entries.set(key, answer);
    this.bytes += size;
    for (const [oldest, value] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= value.length * 2;
    }
  }

  get size(): number {
    return this.entries.size;
  }
}
