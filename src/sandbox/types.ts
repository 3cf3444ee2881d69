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

/** Allow and deny lists of one kind of permission. Deny wins; absent means denied. */
export interface PermissionList {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

/**
 * Deno-style grants for a run. `read`/`write`: absolute paths (prefix semantics); `net`: hosts
 * (`example.com`, `*.hf.co:443`, `10.0.0.5`); `env`: variable names (`AWS_*`); `import`:
 * modules beyond the standard library (an import deny list also applies to the standard library).
 */
export interface RunPermissions {
  readonly read?: PermissionList;
  readonly write?: PermissionList;
  readonly net?: PermissionList;
  readonly env?: PermissionList;
  readonly import?: PermissionList;
}

export type PermissionKind = 'read' | 'write' | 'net' | 'env' | 'import';

/** One use of a grant or one denial, in the spirit of DENO_AUDIT_PERMISSIONS. */
export interface AuditEvent {
  readonly kind: PermissionKind;
  /** The path, host:port, variable name or module; never a value or a secret. */
  readonly value: string;
  readonly allowed: boolean;
  readonly reason?: string;
  readonly runId: string;
  /** ISO 8601 time of the event. */
  readonly time: string;
  /** `host`: decided by the host (authoritative); `sandbox`: reported from inside the run. */
  readonly source: 'host' | 'sandbox';
}

/** A file the run wrote under a `write` grant, collected after the run. */
export interface WrittenFile {
  readonly path: string;
  readonly size: number;
  /** The content, base64. */
  readonly data: string;
}

export interface RunOptions {
  /** Wall-clock limit for executing all cells, in milliseconds. */
  readonly timeoutMs?: number;
  /** Limit for the Python heap (WebAssembly memory), in MiB. */
  readonly memoryMb?: number;
  /** Cap on captured stdout and on stderr, each, in bytes. */
  readonly maxOutputBytes?: number;
  /** Cap on one result representation or error message, in bytes. */
  readonly maxResultBytes?: number;
  /** Cap on all outputs of the run together (streams, results, errors), in bytes. Default 16 MiB. */
  readonly maxRunOutputBytes?: number;
  readonly permissions?: RunPermissions;
  /** Called for every grant used and every denial, as it happens. */
  readonly onAudit?: (event: AuditEvent) => void;
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
  /** Identifies the run in audit events. */
  readonly runId: string;
  /** Files written under `write` grants; absent when nothing may be written. */
  readonly files?: readonly WrittenFile[];
  /** The static check that preceded the run, where one did (the CLI and server always check). */
  readonly check?: CheckResult;
}
