/**
 * Answers a repeated `POST /v1/check` from the bytes of its body, before any parsing: the same
 * JSON body (the notebook or source and the policy it names) always gets the same answer from
 * this server, because policies and rules are fixed when it starts. Only JSON bodies that carry
 * the code itself are kept (a `{ "url" }` body may fetch different code next time; multipart
 * bodies differ in their boundary every time), and only successful answers. The audit log still
 * gets its `upload` and `verdict` lines for every hit.
 *
 * This sits in front of the checker's own verdict cache, which catches the same code arriving
 * in different bytes (another upload form, other outputs or metadata).
 */
import { VerdictCache, type VerdictCacheOptions } from '../check/verdict-cache.js';

/** What the audit log says about a check, kept with the answer so a hit is logged like a miss. */
export interface CheckLogFields {
  readonly upload: Record<string, unknown>;
  readonly verdict: Record<string, unknown>;
}

export interface CachedAnswer {
  readonly body: string;
  readonly log: CheckLogFields;
}

export class CheckAnswers {
  private readonly cache: VerdictCache;

  constructor(options: VerdictCacheOptions = {}) {
    this.cache = new VerdictCache(options);
  }

  /** The cache key of a raw JSON body. */
  static keyOf(body: string): string {
    return VerdictCache.keyOf(body);
  }

  get(key: string): CachedAnswer | undefined {
    const stored = this.cache.get(key);
    if (stored === undefined) return undefined;
    // Stored as the log fields' JSON (which never holds a raw newline), a newline, the body.
    const split = stored.indexOf('\n');
    return { log: JSON.parse(stored.slice(0, split)) as CheckLogFields, body: stored.slice(split + 1) };
  }

  set(key: string, answer: CachedAnswer): void {
    this.cache.set(key, `${JSON.stringify(answer.log)}\n${answer.body}`);
  }

  stats(): { hits: number; misses: number; entries: number } {
    return { hits: this.cache.hits, misses: this.cache.misses, entries: this.cache.size };
  }
}
