/**
 * The sandbox: hands each run a fresh sandbox process (kept warm ahead of time), enforces the
 * time and memory guards from the host side, and turns what the process reports into a result.
 */
import { randomUUID } from 'node:crypto';
import { NbsError, type ErrorInfo } from '../errors.js';
import { readPackageIndex, type PackageIndex } from './permissions/packages.js';
import { DEFAULT_PERMISSION_CAPS, prepareRun, type HostEvent, type PermissionCaps, type PreparedRun } from './permissions/grants.js';
import { isolationReport, networkNamespacePrefix } from './isolation.js';
import { locateRuntime, type RuntimeFiles } from './locate.js';
import { SandboxProcess } from './process.js';
import type { CellMessage, CellSource, RunLimits, SandboxMessage } from './protocol.js';
import type { CellResult, RunInput, RunOptions, RunResult, RunStatus, WrittenFile } from './types.js';

export interface SandboxOptions {
  /** Processes started ahead of time so a run need not wait for start-up. Default 1. */
  readonly warmProcesses?: number;
  /** Runs executing at once; further runs wait. Default 2. */
  readonly maxConcurrentRuns?: number;
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
} as const;

type Limit = keyof typeof LIMITS;

const STARTUP_MESSAGE_BYTES = 64 * 1024;

/**
 * The most a run can legitimately send back: captured streams (stdout and stderr from Python,
 * raw fd writes), per cell a result, an error message and its traceback (two result caps), all
 * up to six times longer once JSON escapes control characters, plus framing.
 */
function incomingBudget(limits: RunLimits, cellCount: number): number {
  return 6 * (3 * limits.maxOutputBytes + (cellCount + 1) * 4 * limits.maxResultBytes) + (cellCount + 1) * 4096;
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

function capText(text: string, maxBytes: number): { text: string; cut: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return { text, cut: false };
  return { text: bytes.subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, ''), cut: true };
}

interface RunContext {
  readonly runId: string;
  readonly cells: readonly CellSource[];
  readonly limits: RunLimits;
  readonly timeoutMs: number;
  readonly prepared: PreparedRun;
  readonly emit: (event: HostEvent) => void;
}

interface Outcome {
  readonly kind: 'done' | 'fatal' | 'exit';
}

/** A counting semaphore with a FIFO queue. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}
  get queued(): number {
    return this.waiting.length;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

export class Sandbox implements AsyncDisposable {
  private readonly warm: SandboxProcess[] = [];
  private readonly active = new Set<SandboxProcess>();
  private readonly slots: Slots;
  private closed = false;

  /** @internal use createSandbox */
  constructor(
    private readonly files: RuntimeFiles,
    private readonly options: SandboxOptions,
    private readonly packageIndex?: PackageIndex,
  ) {
    this.slots = new Slots(options.maxConcurrentRuns ?? 2);
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
        return await this.execute(sandboxProcess, { runId, cells, limits, timeoutMs, prepared, emit });
      } finally {
        this.active.delete(sandboxProcess);
        await sandboxProcess.kill();
      }
    } finally {
      this.slots.release();
    }
  }

  /** Processes waiting warm, runs executing and runs waiting for a slot. */
  stats(): { warm: number; running: number; queued: number } {
    return { warm: this.warm.length, running: this.active.size, queued: this.slots.queued };
  }

  /** Resolves when the processes started ahead of time are ready (a server waits for it before listening). */
  async warmUp(): Promise<void> {
    await Promise.all(this.warm.map((sandboxProcess) => this.waitReady(sandboxProcess)));
  }

  /** Stops every sandbox process; runs still executing end with status `killed`. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.warm.splice(0), ...this.active];
    await Promise.all(all.map((sandboxProcess) => sandboxProcess.kill()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private spawn(): SandboxProcess {
    const useNamespace = this.options.networkNamespace ?? true;
    return new SandboxProcess({
      files: this.files,
      networkNamespace: useNamespace ? networkNamespacePrefix() : null,
      maxMessageBytes: STARTUP_MESSAGE_BYTES,
      ...(this.packageIndex ? { packageDir: this.packageIndex.dir } : {}),
    });
  }

  private refill(): void {
    const wanted = this.options.warmProcesses ?? 1;
    while (!this.closed && this.warm.length < wanted) {
      const sandboxProcess = this.spawn();
      this.warm.push(sandboxProcess);
      void sandboxProcess.exited.then(() => {
        const position = this.warm.indexOf(sandboxProcess);
        if (position >= 0) this.warm.splice(position, 1);
      });
    }
  }

  private take(): SandboxProcess {
    let sandboxProcess = this.warm.shift();
    while (sandboxProcess?.hasExited) sandboxProcess = this.warm.shift();
    sandboxProcess ??= this.spawn();
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
    const { cells, limits, timeoutMs, prepared, emit } = run;
    const finished = new Map<number, CellMessage>();
    let written: { files: WrittenFile[]; truncated: boolean } | undefined;
    const expectedIndexes = new Set(cells.map((cell) => cell.index));
    const rssBudgetMb = limits.memoryMb + (this.options.runtimeOverheadMb ?? 448);
    let peakRssMb: number | null = sandboxProcess.memory()?.peakRssMb ?? null;
    let timedOut = false;
    let overMemory = false;
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

      let settled = false;
      const settle = (outcome: Outcome): void => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        unsubscribe();
        sampleMemory();
        resolve(
          this.buildResult({
            runId: run.runId,
            written,
            cells,
            finished,
            limits,
            outcome,
            timedOut,
            overMemory,
            closed: this.closed,
            durationMs: Math.round(performance.now() - startedAt),
            peakRssMb,
            failure: sandboxProcess.failureReason?.toJSON(),
          }),
        );
      };

      unsubscribe = sandboxProcess.onMessage((message: SandboxMessage) => {
        if (message.t === 'cell' && expectedIndexes.has(message.index)) finished.set(message.index, message);
        else if (message.t === 'fetch') {
          void prepared.fetch(message).then((answer) => sandboxProcess.send({ t: 'fetched', id: message.id, answer }));
        } else if (message.t === 'audit') {
          for (const { kind, value, allowed, reason } of message.events) {
            emit({ kind, value, allowed, source: 'sandbox', ...(reason !== undefined ? { reason } : {}) });
          }
        } else if (message.t === 'files' && written === undefined) written = prepared.acceptFiles(message);
        else if (message.t === 'done') settle({ kind: 'done' });
        else if (message.t === 'fatal') settle({ kind: 'fatal' });
      });
      void sandboxProcess.exited.then(() => settle({ kind: 'exit' }));

      timers.push(setInterval(sampleMemory, 50));
      sandboxProcess.limitIncoming(incomingBudget(limits, cells.length) + prepared.incomingBytes);
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

  private buildResult(run: {
    runId: string;
    written: { files: WrittenFile[]; truncated: boolean } | undefined;
    cells: readonly CellSource[];
    finished: ReadonlyMap<number, CellMessage>;
    limits: RunLimits;
    outcome: Outcome;
    timedOut: boolean;
    overMemory: boolean;
    closed: boolean;
    durationMs: number;
    peakRssMb: number | null;
    failure: ErrorInfo | undefined;
  }): RunResult {
    const cellResults: CellResult[] = [];
    let executionCount = 0;
    let stopped = false;
    let truncated = false;
    let lastError: string | undefined;
    for (const cell of run.cells) {
      const message = run.finished.get(cell.index);
      const id = cell.id !== undefined ? { id: cell.id } : {};
      if (message && !stopped) {
        executionCount += 1;
        truncated ||= message.truncated;
        cellResults.push({ index: cell.index, ...id, status: message.status, executionCount, outputs: message.outputs });
        if (message.status === 'error') {
          stopped = true;
          lastError = message.ename;
        }
      } else if (!stopped && run.outcome.kind !== 'done') {
        stopped = true;
        cellResults.push({ index: cell.index, ...id, status: 'interrupted', executionCount: null, outputs: [] });
      } else {
        cellResults.push({ index: cell.index, ...id, status: 'skipped', executionCount: null, outputs: [] });
      }
    }

    const streams = { stdout: '', stderr: '' };
    for (const cell of cellResults) {
      for (const output of cell.outputs) if (output.output_type === 'stream') streams[output.name] += output.text;
    }
    const stdout = capText(streams.stdout, run.limits.maxOutputBytes);
    const stderr = capText(streams.stderr, run.limits.maxOutputBytes);

    let status: RunStatus;
    let error: ErrorInfo | undefined;
    if (run.timedOut) {
      status = 'timeout';
      error = new NbsError('NBS_TIMEOUT').toJSON();
    } else if (run.overMemory || lastError === 'MemoryError') {
      status = 'memory';
      error = new NbsError('NBS_MEMORY').toJSON();
    } else if (run.outcome.kind !== 'done') {
      status = 'killed';
      error = run.closed ? new NbsError('NBS_SANDBOX_CLOSED').toJSON() : run.failure ?? new NbsError('NBS_SANDBOX_CRASHED').toJSON();
    } else {
      status = lastError ? 'error' : 'ok';
    }
    return {
      status,
      cells: cellResults,
      stdout: stdout.text,
      stderr: stderr.text,
      truncated: truncated || stdout.cut || stderr.cut || (run.written?.truncated ?? false),
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
  return new Sandbox(files, options, packageIndex);
}
