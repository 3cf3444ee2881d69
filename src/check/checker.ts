/**
 * The checker: long-lived worker threads running wasm/checker inside Pyodide. A request that
 * kills or hangs its worker gets a fail-closed result (an unparsable finding) and the worker is
 * replaced; the host never crashes on hostile source.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { NbsError } from '../errors.js';
import { VerdictCache, type VerdictCacheOptions } from './verdict-cache.js';
import type { Policy } from '../policy/load.js';
import { SEVERITIES, type Severity } from '../policy/schema.js';
import { parseCheckAnswer } from './answer.js';
import type { CheckInput, CheckResult, Finding, Verdict } from './types.js';

export interface CheckerOptions {
  /** Worker threads, each with its own Pyodide (~3 s to start, started on first use). Default: one per core, at most 8. */
  readonly workers?: number;
  /** A check that takes longer is abandoned and its worker replaced. Default 30 s. */
  readonly timeoutMs?: number;
  /** Stack of each worker; deep enough that hostile nesting fails cleanly. Default 64 MiB. */
  readonly stackSizeMb?: number;
  /** Keep answers for repeated checks (same code, same policy); `false` turns it off. Default on. */
  readonly cache?: VerdictCacheOptions | false;
}

const CHECKER_DIR = fileURLToPath(new URL('../../wasm/checker/', import.meta.url));
const WORKER_FILE = fileURLToPath(new URL('./worker.js', import.meta.url));
/** The virtual paths a run may write without a grant. */
const ALWAYS_WRITABLE = ['/tmp', '/home/pyodide'];

/** The worker's JSON answer; null when the input killed or hung the worker. */
type Answer = string | null | NbsError;

interface Job {
  readonly request: string;
  readonly resolve: (answer: Answer) => void;
}

/** One checker worker per core: checks are CPU-bound and never wait on I/O. */
export function defaultCheckerWorkers(): number {
  return Math.max(1, Math.min(8, availableParallelism()));
}

const rank = (severity: Severity): number => SEVERITIES.indexOf(severity);

/** The verdict for a set of findings under a policy's thresholds. */
export function verdictFor(findings: readonly Finding[], policy: Policy): Verdict {
  const worst = Math.max(-1, ...findings.map((finding) => rank(finding.severity)));
  const { denyAt, warnAt } = policy.verdict;
  if (denyAt !== 'never' && worst >= rank(denyAt)) return 'deny';
  return worst >= rank(warnAt) ? 'warn' : 'allow';
}

class CheckerWorker {
  private readonly worker: Worker;
  readonly ready: Promise<void>;
  private current: { job: Job; timer?: NodeJS.Timeout } | undefined;
  dead = false;
  private started = false;

  constructor(
    private readonly options: Required<Omit<CheckerOptions, 'cache'>>,
    private readonly onDeath: (worker: CheckerWorker) => void,
    /** Called when a job is done, so the next queued one is handed out. */
    private readonly onFree: () => void,
  ) {
    this.worker = new Worker(WORKER_FILE, {
      workerData: { checkerDir: CHECKER_DIR },
      resourceLimits: { stackSizeMb: options.stackSizeMb },
      stdout: true,
      stderr: true,
    });
    this.ready = new Promise((resolve, reject) => {
      this.worker.once('message', () => {
        this.started = true;
        resolve();
      });
      this.worker.once('error', reject);
      this.worker.once('exit', () => reject(new NbsError('NBS_CHECKER_FAILED', 'checker did not start')));
    });
    this.ready.catch(() => undefined);
    this.worker.on('message', (message: { id?: number; response?: string; failure?: string }) => {
      if (message.id === undefined || !this.current) return;
      // A failure inside Pyodide may leave it unusable: no further job goes to this worker.
      if (message.failure !== undefined) this.retire();
      this.finish(message.response ?? null);
    });
    this.worker.on('error', () => undefined);
    this.worker.once('exit', () => {
      // Out of service first: finishing the job hands out the next one, never to this worker.
      this.retire();
      this.finish(this.started ? null : new NbsError('NBS_CHECKER_FAILED', 'a checker worker did not start'));
    });
  }

  /** Takes this worker out of service at once, so the checker starts a replacement. */
  private retire(): void {
    if (this.dead) return;
    this.dead = true;
    void this.worker.terminate();
    this.onDeath(this);
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  /** Takes the job at once (so no other job is given to it) and sends it once started. */
  run(job: Job, id: number): void {
    const current: { job: Job; timer?: NodeJS.Timeout } = { job };
    this.current = current;
    this.ready.then(
      () => {
        if (this.current !== current) return;
        current.timer = setTimeout(() => void this.worker.terminate(), this.options.timeoutMs);
        this.worker.postMessage({ id, request: job.request });
      },
      () => this.finish(new NbsError('NBS_CHECKER_FAILED', 'a checker worker did not start')),
    );
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }

  private finish(response: Answer): void {
    const current = this.current;
    if (!current) return;
    this.current = undefined;
    clearTimeout(current.timer);
    current.job.resolve(response);
    this.onFree();
  }
}

export class Checker implements AsyncDisposable {
  private readonly options: Required<Omit<CheckerOptions, 'cache'>>;
  private readonly cache: VerdictCache | null;
  private readonly workers: CheckerWorker[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(options: CheckerOptions = {}) {
    this.options = { workers: options.workers ?? defaultCheckerWorkers(), timeoutMs: options.timeoutMs ?? 30_000, stackSizeMb: options.stackSizeMb ?? 64 };
    this.cache = options.cache === false ? null : new VerdictCache(options.cache ?? {});
  }

  /** Checks code cells or a marimo file against a policy. Never runs the code. */
  async check(input: CheckInput, policy: Policy): Promise<CheckResult> {
    if (this.closed) throw new NbsError('NBS_CHECKER_FAILED', 'the checker has been closed');
    const startedAt = performance.now();
    const request = JSON.stringify({
      ...input,
      policy: {
        magics: policy.magics,
        imports: policy.imports,
        rules: policy.rules,
        verdict: policy.verdict,
        writablePaths: [...ALWAYS_WRITABLE, ...policy.execution.permissions.write.allow],
      },
    });
    const key = this.cache ? VerdictCache.keyOf(request) : '';
    const cached = this.cache?.get(key);
    const response =
      cached ??
      (await new Promise<Answer>((resolve) => {
        this.queue.push({ request, resolve });
        this.dispatch();
      }));
    if (response instanceof NbsError) throw response;
    if (this.closed) throw new NbsError('NBS_CHECKER_FAILED', 'the checker has been closed');
    const policyInfo = { id: policy.id, hash: policy.hash };
    const durationMs = Math.round(performance.now() - startedAt);
    const parsed = response === null ? null : parseCheckAnswer(response);
    if (response === null || parsed === null) return this.failClosed(input, policy, durationMs);
    if (cached === undefined) this.cache?.set(key, response);
    return { ...parsed, policy: policyInfo, durationMs };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve(null);
    await Promise.all(this.workers.splice(0).map((worker) => worker.terminate()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Cache hits and misses since start, and entries held. */
  cacheStats(): { hits: number; misses: number; entries: number } {
    return { hits: this.cache?.hits ?? 0, misses: this.cache?.misses ?? 0, entries: this.cache?.size ?? 0 };
  }

  /** Starts the workers and waits until they can take checks. */
  async warmUp(): Promise<void> {
    this.fill();
    await Promise.all(this.workers.map((worker) => worker.ready));
  }

  private fill(): void {
    while (!this.closed && this.workers.length < this.options.workers) {
      this.workers.push(
        new CheckerWorker(
          this.options,
          (dead) => {
            const position = this.workers.indexOf(dead);
            if (position >= 0) this.workers.splice(position, 1);
            this.dispatch();
          },
          () => this.dispatch(),
        ),
      );
    }
  }

  private dispatch(): void {
    this.fill();
    for (const worker of this.workers) {
      if (this.queue.length === 0) return;
      if (worker.busy || worker.dead) continue;
      worker.run(this.queue.shift() as Job, this.nextId++);
    }
  }

  /** The input broke the checker: report it as unanalysable, which the policy decides on. */
  private failClosed(input: CheckInput, policy: Policy, durationMs: number): CheckResult {
    const first = input.kind === 'cells' ? input.cells[0] : undefined;
    const finding: Finding = {
      ruleId: 'NBS-PARSE-001',
      severity: policy.verdict.unparsable,
      message: 'the checker could not analyse this input (too deeply nested or too slow)',
      cell: first?.index ?? 0,
      cellId: first?.id ?? null,
      line: 1,
      column: 1,
      endLine: 1,
      endColumn: 1,
      bandit: null,
    };
    return {
      verdict: verdictFor([finding], policy),
      findings: [finding],
      cells: [],
      policy: { id: policy.id, hash: policy.hash },
      rulesetVersion: 'unknown',
      durationMs,
    };
  }
}
