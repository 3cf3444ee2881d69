/**
 * The sandbox: hands each run a fresh sandbox process (kept warm ahead of time), enforces the
 * time and memory guards from the host side, and turns what the process reports into a result.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism, totalmem } from 'node:os';
import { NbsError, type ErrorInfo } from '../errors.js';
import { readPackageIndex, type PackageIndex } from './permissions/packages.js';
import { DEFAULT_PERMISSION_CAPS, prepareRun, type HostEvent, type PermissionCaps, type PreparedRun } from './permissions/grants.js';
import { isolationReport, networkNamespacePrefix } from './isolation.js';
import { locateRuntime, type RuntimeFiles } from './locate.js';
import { SandboxProcess } from './process.js';
import { RunRecord, type OutputCaps, type Stop } from './run-record.js';
import { RING_RECORD_PAYLOAD, STREAM_LINE_CHARS } from './runtime/wire-sizes.js';
import { verifySnapshot, type SnapshotCheck } from './snapshot.js';
import type { CellSource, RunLimits, SandboxMessage } from './protocol.js';
import type { RunInput, RunOptions, RunResult, RunStatus, WrittenFile } from './types.js';
import { WrittenFiles } from './written-files.js';

export interface SandboxOptions {
  /**
   * Processes started ahead of time so a run need not wait for start-up. Each is used for one
   * run and then replaced. Default: one per core, fewer when memory is short (see `defaultPoolSize`).
   */
  readonly warmProcesses?: number;
  /** Runs executing at once; further runs wait. Default: the same as the pool (`defaultPoolSize`). */
  readonly maxConcurrentRuns?: number;
  /** Runs that may wait for a free slot; one more fails with `NBS_BUSY`. Default 100. */
  readonly maxQueuedRuns?: number;
  /**
   * Start processes from the start-up snapshot built by `npm run build` (`wasm/build/`) when it
   * matches this installation. Default true; without a usable snapshot processes start plain.
   */
  readonly snapshot?: boolean;
  /** Defaults for every run; a run's own options override them. */
  readonly runDefaults?: RunOptions;
  /** How long a process may take to start before the run fails. Default 60 s. */
  readonly startupTimeoutMs?: number;
  /** Time between the interrupt at the deadline and the hard kill. Default 100 ms. */
  readonly interruptGraceMs?: number;
  /** Resident memory allowed above `memoryMb` for the runtime itself. Default 448 MiB. */
  readonly runtimeOverheadMb?: number;
  /** Put sandbox processes in an empty network namespace where the OS allows. Default true. */
  readonly networkNamespace?: boolean;
  /** Caps on granted files and brokered requests per run. */
  readonly permissionCaps?: Partial<PermissionCaps>;
  /** Name resolution for the network broker (default: the system resolver). */
  readonly resolveHost?: (host: string) => Promise<readonly string[]>;
  /**
   * A Pyodide package directory (`pyodide-lock.json` beside its wheels). Runs may import its
   * packages when their `import` permission allows them; nothing is ever downloaded.
   */
  readonly packageDir?: string;
}

const LIMITS = {
  timeoutMs: { min: 1, max: 24 * 3600 * 1000, default: 30_000 },
  memoryMb: { min: 64, max: 3584, default: 512 },
  maxOutputBytes: { min: 1024, max: 64 * 1024 * 1024, default: 1024 * 1024 },
  maxResultBytes: { min: 256, max: 16 * 1024 * 1024, default: 64 * 1024 },
  maxRunOutputBytes: { min: 1024, max: 256 * 1024 * 1024, default: 16 * 1024 * 1024 },
} as const;

/** Outputs one run may have (consecutive writes to one stream count as one). */
const MAX_OUTPUTS_PER_RUN = 10_000;
/** Audit events a run may report from inside (each one becomes a log line in the server). */
const MAX_SANDBOX_AUDIT_EVENTS = 1000;
/** Messages of a run besides its stream batches: outputs, audit batches, requests, files. */
const MESSAGES_PER_RUN = 40_000;
/** The sandbox process sends buffered stream text at most this often (runtime/main.ts). */
const STREAM_BATCH_MS = 10;

type Limit = keyof typeof LIMITS;

const STARTUP_MESSAGE_BYTES = 64 * 1024;

/** Memory one warm sandbox process is budgeted for when sizing the default pool. */
const WARM_PROCESS_BUDGET_MB = 256;

/** One warm process per core, but never more than a quarter of the machine's memory allows. */
export function defaultPoolSize(): number {
  const byMemory = Math.floor(totalmem() / 4 / (WARM_PROCESS_BUDGET_MB * 1024 * 1024));
  return Math.max(1, Math.min(availableParallelism(), byMemory));
}

/** Delay before restarting warm processes after start-ups failed in a row (doubles, capped). */
function refillBackoffMs(failuresInARow: number): number {
  return failuresInARow === 0 ? 0 : Math.min(30_000, 500 * 2 ** (failuresInARow - 1));
}

/**
 * The error a run ended on means it ran out of memory: a MemoryError, or an allocation larger
 * than the 32-bit interpreter can address at all (64-bit CPython raises MemoryError for those).
 */
function isOutOfMemory(error: { ename: string; evalue: string }): boolean {
  return error.ename === 'MemoryError' || (error.ename === 'OverflowError' && error.evalue === "cannot fit 'int' into an index-sized integer");
}

/** JSON may spell one byte of text as six (`\u0001`). */
const JSON_ESCAPE = 6;
/** A stream line: the main thread's batch plus the ring record that took it over the batch size. */
const STREAM_LINE_BYTES = JSON_ESCAPE * (STREAM_LINE_CHARS + RING_RECORD_PAYLOAD) + 1024;
/** An audit line: 1000 events of two 512-character strings. */
const AUDIT_LINE_BYTES = JSON_ESCAPE * 1000 * 1100 + 1024;

/**
 * The most a run can legitimately send: its longest line, and all its bytes (every output at its
 * cap, fully escaped, the grants' own traffic, and one byte per millisecond for the framing of
 * output batched every few milliseconds). Past either the process is broken or hostile.
 */
function wireLimits(caps: OutputCaps, timeoutMs: number, cells: number, prepared: PreparedRun): { maxLineBytes: number; maxTotalBytes: number } {
  const outputLine = JSON_ESCAPE * 3 * caps.maxResultBytes + 64 * 1024;
  const messages = MESSAGES_PER_RUN + 4 * cells + Math.ceil(Math.min(timeoutMs, 3_600_000) / STREAM_BATCH_MS);
  return {
    maxLineBytes: Math.max(STREAM_LINE_BYTES, AUDIT_LINE_BYTES, outputLine, prepared.maxLineBytes),
    // The run total is counted as sent (escaped), streams as text; plus framing for every message.
    maxTotalBytes: caps.maxRunOutputBytes + JSON_ESCAPE * 2 * caps.maxOutputBytes + AUDIT_LINE_BYTES + prepared.incomingBytes + 160 * messages,
  };
}

function resolveLimit(name: Limit, ...values: (number | undefined)[]): number {
  const value = values.find((candidate) => candidate !== undefined) ?? LIMITS[name].default;
  const { min, max } = LIMITS[name];
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new NbsError('NBS_OPTION_INVALID', `${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

function normaliseInput(input: RunInput): CellSource[] {
  if (typeof input === 'string') return [{ index: 0, source: input }];
  if (!input || !Array.isArray(input.cells)) throw new NbsError('NBS_OPTION_INVALID', 'input must be source text or { cells }');
  return input.cells.map((cell, position) => {
    if (typeof cell?.source !== 'string') throw new NbsError('NBS_OPTION_INVALID', `cell ${position} has no source text`);
    return {
      index: cell.index ?? position,
      source: cell.source,
      ...(cell.id !== undefined ? { id: cell.id } : {}),
    };
  });
}

interface RunContext {
  readonly runId: string;
  readonly cells: readonly CellSource[];
  readonly limits: RunLimits;
  readonly caps: OutputCaps;
  readonly timeoutMs: number;
  readonly prepared: PreparedRun;
  readonly emit: (event: HostEvent) => void;
}

/** How the reading of a run ended: the sandbox said it was done, or the process is gone. */
type Outcome = 'done' | 'exit';

/** A counting semaphore with a bounded FIFO queue. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(
    private free: number,
    private readonly maxWaiting: number,
  ) {}
  get queued(): number {
    return this.waiting.length;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    if (this.waiting.length >= this.maxWaiting) throw new NbsError('NBS_BUSY');
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

/** What `Sandbox.stats()` reports: the warm pool, the runs and how processes start. */
export interface SandboxStats {
  /** Processes started ahead of time and not yet handed out (some may still be starting). */
  readonly warm: number;
  /** Of those, the ones ready to run at once. */
  readonly ready: number;
  /** Warm processes the pool keeps. */
  readonly poolSize: number;
  readonly running: number;
  readonly queued: number;
  readonly maxConcurrentRuns: number;
  readonly maxQueuedRuns: number;
  /** Processes started since creation, and those that failed to start or died while waiting. */
  readonly started: number;
  readonly failedWarm: number;
  /** Warm processes that failed to start since the last one that did; the pool backs off meanwhile. */
  readonly startFailuresInARow: number;
  /** `snapshot`: processes restore the start-up snapshot; `plain`: they start CPython from scratch. */
  readonly startMode: 'snapshot' | 'plain';
  /** Why there is no snapshot start, when there is none. */
  readonly snapshotReason?: string;
}

export class Sandbox implements AsyncDisposable {
  private readonly warm: SandboxProcess[] = [];
  private readonly active = new Set<SandboxProcess>();
  private readonly slots: Slots;
  private readonly poolSize: number;
  private readonly maxConcurrentRuns: number;
  private readonly maxQueuedRuns: number;
  private closed = false;
  private started = 0;
  private failedWarm = 0;
  private failuresInARow = 0;
  private refillTimer: NodeJS.Timeout | undefined;

  /** @internal use createSandbox */
  constructor(
    private readonly files: RuntimeFiles,
    private readonly options: SandboxOptions,
    private readonly packageIndex: PackageIndex | undefined,
    private readonly snapshot: SnapshotCheck,
  ) {
    this.poolSize = options.warmProcesses ?? defaultPoolSize();
    this.maxConcurrentRuns = options.maxConcurrentRuns ?? defaultPoolSize();
    this.maxQueuedRuns = options.maxQueuedRuns ?? 100;
    for (const [name, value, min] of [['warmProcesses', this.poolSize, 0], ['maxConcurrentRuns', this.maxConcurrentRuns, 1], ['maxQueuedRuns', this.maxQueuedRuns, 0]] as const) {
      if (!Number.isInteger(value) || value < min || value > 1024) throw new NbsError('NBS_OPTION_INVALID', `${name} must be an integer from ${min} to 1024`);
    }
    this.slots = new Slots(this.maxConcurrentRuns, this.maxQueuedRuns);
    this.refill();
  }

  /** Runs Python source or notebook cells in a pristine interpreter and reports the outcome. */
  async run(input: RunInput, options: RunOptions = {}): Promise<RunResult> {
    if (this.closed) throw new NbsError('NBS_SANDBOX_CLOSED');
    const defaults = this.options.runDefaults ?? {};
    const timeoutMs = resolveLimit('timeoutMs', options.timeoutMs, defaults.timeoutMs);
    const limits: RunLimits = {
      memoryMb: resolveLimit('memoryMb', options.memoryMb, defaults.memoryMb),
      maxOutputBytes: resolveLimit('maxOutputBytes', options.maxOutputBytes, defaults.maxOutputBytes),
      maxResultBytes: resolveLimit('maxResultBytes', options.maxResultBytes, defaults.maxResultBytes),
    };
    const caps: OutputCaps = {
      maxOutputBytes: limits.maxOutputBytes,
      maxResultBytes: limits.maxResultBytes,
      maxRunOutputBytes: resolveLimit('maxRunOutputBytes', options.maxRunOutputBytes, defaults.maxRunOutputBytes),
      maxOutputs: MAX_OUTPUTS_PER_RUN,
    };
    const cells = normaliseInput(input);
    const runId = randomUUID();
    const onAudit = options.onAudit ?? defaults.onAudit;
    const emit = (event: HostEvent): void => {
      onAudit?.({ ...event, runId, time: new Date().toISOString() });
    };
    const prepared = await prepareRun(
      options.permissions ?? defaults.permissions ?? {},
      emit,
      { ...DEFAULT_PERMISSION_CAPS, ...this.options.permissionCaps },
      this.options.resolveHost,
      this.packageIndex,
    );

    await this.slots.acquire();
    try {
      if (this.closed) throw new NbsError('NBS_SANDBOX_CLOSED');
      const sandboxProcess = this.take();
      try {
        await this.waitReady(sandboxProcess);
        return await this.execute(sandboxProcess, { runId, cells, limits, caps, timeoutMs, prepared, emit });
      } finally {
        prepared.close();
        this.active.delete(sandboxProcess);
        await sandboxProcess.kill();
      }
    } finally {
      this.slots.release();
    }
  }

  /** The warm pool, the runs executing and waiting, and how processes start. */
  stats(): SandboxStats {
    return {
      warm: this.warm.length,
      ready: this.warm.filter((sandboxProcess) => sandboxProcess.hasStarted).length,
      poolSize: this.poolSize,
      running: this.active.size,
      queued: this.slots.queued,
      maxConcurrentRuns: this.maxConcurrentRuns,
      maxQueuedRuns: this.maxQueuedRuns,
      started: this.started,
      failedWarm: this.failedWarm,
      startFailuresInARow: this.failuresInARow,
      startMode: this.snapshot.usable ? 'snapshot' : 'plain',
      ...(this.snapshot.usable ? {} : { snapshotReason: this.snapshot.reason }),
    };
  }

  /** Resolves when the processes started ahead of time are ready (a server waits for it before listening). */
  async warmUp(): Promise<void> {
    await Promise.all(this.warm.map((sandboxProcess) => this.waitReady(sandboxProcess)));
  }

  /** Stops every sandbox process; runs still executing end with status `killed`. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.refillTimer);
    const all = [...this.warm.splice(0), ...this.active];
    await Promise.all(all.map((sandboxProcess) => sandboxProcess.kill()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private spawn(): SandboxProcess {
    const useNamespace = this.options.networkNamespace ?? true;
    this.started += 1;
    const sandboxProcess = new SandboxProcess({
      files: this.files,
      networkNamespace: useNamespace ? networkNamespacePrefix() : null,
      maxMessageBytes: STARTUP_MESSAGE_BYTES,
      ...(this.packageIndex ? { packageDir: this.packageIndex.dir } : {}),
      ...(this.snapshot.usable ? { snapshot: { kind: 'load', path: this.snapshot.path } } : {}),
    });
    sandboxProcess.ready.then(
      () => {
        this.failuresInARow = 0;
      },
      () => undefined,
    );
    return sandboxProcess;
  }

  /**
   * Tops the pool up to its size. A warm process that dies before it is handed out (crashed,
   * killed from outside, failed to start) is dropped and replaced; start-ups that keep failing
   * are retried with a growing delay instead of in a tight loop.
   */
  private refill(): void {
    if (this.closed || this.refillTimer) return;
    const delay = refillBackoffMs(this.failuresInARow);
    if (delay > 0) {
      this.refillTimer = setTimeout(() => {
        this.refillTimer = undefined;
        this.topUp();
      }, delay);
      this.refillTimer.unref();
      return;
    }
    this.topUp();
  }

  private topUp(): void {
    while (!this.closed && this.warm.length < this.poolSize) {
      const sandboxProcess = this.spawn();
      this.warm.push(sandboxProcess);
      void sandboxProcess.exited.then(() => {
        const position = this.warm.indexOf(sandboxProcess);
        if (position < 0) return;
        this.warm.splice(position, 1);
        this.failedWarm += 1;
        if (!sandboxProcess.hasStarted) this.failuresInARow += 1;
        this.refill();
      });
    }
  }

  private take(): SandboxProcess {
    // Prefer a process that is already up; one still starting is as good as a new one.
    let position = this.warm.findIndex((candidate) => candidate.hasStarted && !candidate.hasExited);
    if (position < 0) position = this.warm.findIndex((candidate) => !candidate.hasExited);
    const sandboxProcess = position >= 0 ? this.warm.splice(position, 1)[0]! : this.spawn();
    this.active.add(sandboxProcess);
    this.refill();
    return sandboxProcess;
  }

  private async waitReady(sandboxProcess: SandboxProcess): Promise<void> {
    const startupTimeoutMs = this.options.startupTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new NbsError('NBS_SANDBOX_START_FAILED', 'start-up timed out')), startupTimeoutMs);
    });
    try {
      await Promise.race([sandboxProcess.ready, timeout]);
    } catch (error) {
      if (this.closed) throw new NbsError('NBS_SANDBOX_CLOSED');
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private execute(sandboxProcess: SandboxProcess, run: RunContext): Promise<RunResult> {
    const { cells, limits, caps, timeoutMs, prepared, emit } = run;
    const record = new RunRecord(cells, caps);
    const files = new WrittenFiles(prepared.grants.writeCaps);
    let written: { files: WrittenFile[]; truncated: boolean } | undefined;
    const rssBudgetMb = limits.memoryMb + (this.options.runtimeOverheadMb ?? 448);
    let peakRssMb: number | null = sandboxProcess.memory()?.peakRssMb ?? null;
    let timedOut = false;
    let overMemory = false;
    let stopped: Stop | undefined;
    const startedAt = performance.now();

    return new Promise<RunResult>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      let unsubscribe = (): void => undefined;

      const sampleMemory = (): void => {
        const memory = sandboxProcess.memory();
        if (!memory) return;
        peakRssMb = Math.max(peakRssMb ?? 0, memory.peakRssMb);
        if (memory.rssMb > rssBudgetMb && !overMemory) {
          overMemory = true;
          void sandboxProcess.kill();
        }
      };

      /** The host ends the run itself: a cap was reached or the process broke the protocol. */
      const stop = (why: Stop): void => {
        stopped ??= why;
        unsubscribe();
        void sandboxProcess.kill();
      };

      let settled = false;
      const settle = (outcome: Outcome): void => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        unsubscribe();
        sampleMemory();
        prepared.close();
        const ending = {
          runId: run.runId,
          written,
          outcome,
          timedOut,
          overMemory,
          stopped,
          durationMs: Math.round(performance.now() - startedAt),
          peakRssMb,
          failure: sandboxProcess.failureReason?.toJSON(),
        };
        // Whatever the sandbox sent, the run ends with a result and gives its slot back.
        try {
          resolve(this.buildResult(record, ending));
        } catch {
          resolve(this.buildResult(new RunRecord(cells, caps), { ...ending, stopped: { kind: 'protocol', detail: 'the host could not assemble what the sandbox sent' } }));
        }
      };

      let messages = 0;
      const maxMessages = MESSAGES_PER_RUN + 4 * cells.length + Math.ceil(Math.min(timeoutMs, 3_600_000) / STREAM_BATCH_MS);
      let sandboxAuditEvents = 0;

      unsubscribe = sandboxProcess.onMessage((message: SandboxMessage) => {
        messages += 1;
        if (messages > maxMessages) {
          stop({ kind: 'protocol', detail: 'the sandbox sent more messages than a run can' });
          return;
        }
        switch (message.t) {
          case 'start':
          case 'stream':
          case 'output':
          case 'end':
          case 'limit': {
            const why = record.accept(message);
            if (why) stop(why);
            return;
          }
          case 'fetch':
            void prepared.fetch(message).then((answer) => sandboxProcess.send({ t: 'fetched', id: message.id, answer }));
            return;
          case 'audit':
            // Reported from inside the run, so tamperable: a bounded number per run, then one note.
            for (const { kind, value, allowed, reason } of message.events) {
              sandboxAuditEvents += 1;
              if (sandboxAuditEvents <= MAX_SANDBOX_AUDIT_EVENTS) emit({ kind, value, allowed, source: 'sandbox', ...(reason !== undefined ? { reason } : {}) });
              else if (sandboxAuditEvents === MAX_SANDBOX_AUDIT_EVENTS + 1) emit({ kind, value: '*', allowed: false, source: 'host', reason: `the run reported more than ${MAX_SANDBOX_AUDIT_EVENTS} events; the rest are not reported` });
            }
            return;
          case 'file':
            if (!files.piece(message.path, message.data, message.final)) stop({ kind: 'protocol', detail: 'written files interleaved' });
            return;
          case 'files':
            written ??= prepared.acceptFiles(files.finish(message.truncated));
            return;
          case 'done': {
            const problem = record.doneProblem();
            if (problem) stop({ kind: 'protocol', detail: problem });
            else settle('done');
            return;
          }
          case 'fatal':
            settle('exit');
            return;
          default:
            stop({ kind: 'protocol', detail: 'a message that has no place in a run' });
        }
      });
      void sandboxProcess.exited.then(() => settle('exit'));

      timers.push(setInterval(sampleMemory, 50));
      sandboxProcess.limitIncoming(wireLimits(caps, timeoutMs, cells.length, prepared));
      timers.push(
        setTimeout(() => {
          timedOut = true;
          sandboxProcess.send({ t: 'interrupt' });
          timers.push(setTimeout(() => void sandboxProcess.kill(), this.options.interruptGraceMs ?? 100));
        }, timeoutMs),
      );
      sandboxProcess.send({ t: 'run', cells, limits, grants: prepared.grants });
    });
  }

  private buildResult(
    record: RunRecord,
    run: {
      runId: string;
      written: { files: WrittenFile[]; truncated: boolean } | undefined;
      outcome: Outcome;
      timedOut: boolean;
      overMemory: boolean;
      stopped: Stop | undefined;
      durationMs: number;
      peakRssMb: number | null;
      failure: ErrorInfo | undefined;
    },
  ): RunResult {
    const { cells, stdout, stderr, truncated, endedOn } = record.results();
    const outputLimit = record.outputLimit;
    let status: RunStatus;
    let error: ErrorInfo | undefined;
    if (run.timedOut) {
      status = 'timeout';
      error = new NbsError('NBS_TIMEOUT').toJSON();
    } else if (run.overMemory || (endedOn !== undefined && isOutOfMemory(endedOn))) {
      status = 'memory';
      error = new NbsError('NBS_MEMORY').toJSON();
    } else if (outputLimit !== undefined) {
      status = 'error';
      error = new NbsError('NBS_OUTPUT_LIMIT', outputLimit).toJSON();
    } else if (run.stopped?.kind === 'protocol') {
      status = 'killed';
      error = new NbsError('NBS_SANDBOX_PROTOCOL', run.stopped.detail).toJSON();
    } else if (run.outcome !== 'done') {
      status = 'killed';
      error = this.closed ? new NbsError('NBS_SANDBOX_CLOSED').toJSON() : (run.failure ?? new NbsError('NBS_SANDBOX_CRASHED').toJSON());
    } else {
      status = cells.some((cell) => cell.status === 'error') ? 'error' : 'ok';
    }
    return {
      status,
      cells,
      stdout,
      stderr,
      truncated: truncated || (run.written?.truncated ?? false),
      durationMs: run.durationMs,
      peakMemoryMb: run.peakRssMb === null ? null : Math.round(run.peakRssMb),
      isolation: isolationReport(this.options.networkNamespace ?? true),
      runId: run.runId,
      ...(run.written ? { files: run.written.files } : {}),
      ...(error ? { error } : {}),
    };
  }
}

/**
 * Creates a sandbox. Each run gets its own fresh sandbox process; `warmProcesses` of them are
 * started ahead of time.
 *
 * @example
 * await using sandbox = await createSandbox();
 * const result = await sandbox.run('print(1 + 1)', { timeoutMs: 5000 });
 */
export async function createSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const files = locateRuntime();
  if (options.networkNamespace ?? true) networkNamespacePrefix();
  const packageIndex = options.packageDir === undefined ? undefined : readPackageIndex(options.packageDir);
  const snapshot: SnapshotCheck = options.snapshot === false ? { usable: false, reason: 'turned off' } : verifySnapshot(files);
  return new Sandbox(files, options, packageIndex, snapshot);
}
