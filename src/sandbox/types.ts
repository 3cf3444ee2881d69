/** Public types of a sandbox run: its input, options and JSON-serialisable result. */
import type { CheckResult } from '../check/types.js';
import type { ErrorInfo } from '../errors.js';
import type { IsolationReport } from './isolation.js';
import type { NotebookOutput } from './protocol.js';

export type { IsolationReport } from './isolation.js';
export type { NotebookOutput } from './protocol.js';

export interface CodeCell {
  readonly source: string;
  /** nbformat 4.5 cell id, echoed back in the result. */
  readonly id?: string;
  /** Position in the notebook (counting non-code cells); defaults to the position in `cells`. */
  readonly index?: number;
}

/** Python source, or the code cells of a parsed notebook. */
export type RunInput = string | { readonly cells: readonly CodeCell[] };

/** Grants for a run. Nothing can be granted yet: every kind of access is denied. */
export type RunPermissions = Readonly<Record<string, never>>;

export interface RunOptions {
  /** Wall-clock limit for executing all cells, in milliseconds. */
  readonly timeoutMs?: number;
  /** Limit for the Python heap (WebAssembly memory), in MiB. */
  readonly memoryMb?: number;
  /** Cap on captured stdout and on stderr, each, in bytes. */
  readonly maxOutputBytes?: number;
  /** Cap on one result representation or error message, in bytes. */
  readonly maxResultBytes?: number;
  readonly permissions?: RunPermissions;
}

export type RunStatus = 'ok' | 'error' | 'timeout' | 'memory' | 'killed' | 'denied';

export interface CellResult {
  readonly index: number;
  readonly id?: string;
  /** `skipped`: an earlier cell failed; `interrupted`: the run ended while this cell ran. */
  readonly status: 'ok' | 'error' | 'interrupted' | 'skipped';
  readonly executionCount: number | null;
  readonly outputs: readonly NotebookOutput[];
}

export interface RunResult {
  readonly status: RunStatus;
  readonly cells: readonly CellResult[];
  /** All stdout of the run, capped at `maxOutputBytes`. */
  readonly stdout: string;
  /** All stderr of the run, capped at `maxOutputBytes`. */
  readonly stderr: string;
  /** True when any output or result was cut to its cap. */
  readonly truncated: boolean;
  /** Wall time from handing the cells to the interpreter until the run ended. */
  readonly durationMs: number;
  /** Peak resident memory of the sandbox process in MiB, where the OS reports it. */
  readonly peakMemoryMb: number | null;
  readonly isolation: IsolationReport;
  /** Why the run ended abnormally (timeout, memory, crash); absent for `ok` and Python errors. */
  readonly error?: ErrorInfo;
  /** The static check that preceded the run, where one did (the CLI and server always check). */
  readonly check?: CheckResult;
}
