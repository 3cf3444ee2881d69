/**
 * The message channel between the host and a sandbox process: newline-delimited JSON over the
 * process's stdin (host → sandbox) and stdout (sandbox → host). Both sides check every message;
 * the host treats anything malformed as a broken sandbox and kills it.
 */
import * as v from 'valibot';

export interface CellSource {
  readonly index: number;
  readonly id?: string;
  readonly source: string;
}

export interface RunLimits {
  readonly memoryMb: number;
  readonly maxOutputBytes: number;
  readonly maxResultBytes: number;
}

export interface PathLists {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
}

/** What the host grants one run, already checked and resolved on the host side. */
export interface RunGrants {
  /** Host files copied into the virtual file system at these paths (base64 content). */
  readonly files: readonly { readonly path: string; readonly data: string }[];
  /** Virtual directories created before the run: granted directories and write roots. */
  readonly directories: readonly string[];
  readonly read: PathLists;
  readonly write: PathLists;
  /** null: any module beyond the denied ones; else only these beyond the standard library. */
  readonly imports: { readonly allow: readonly string[] | null; readonly deny: readonly string[] };
  readonly env: Readonly<Record<string, string>>;
  /** Packages of the operator's package directory to install before the run. */
  readonly packages: readonly string[];
  /** Caps on the files collected from the write roots after the run. */
  readonly writeCaps: { readonly maxFiles: number; readonly maxBytes: number };
}

/** The broker's answer to one request, as the sandbox receives it. */
export type BrokerAnswer =
  | {
      readonly ok: true;
      readonly status: number;
      readonly statusText: string;
      readonly url: string;
      readonly headers: readonly (readonly [string, string])[];
      readonly body: string;
    }
  | { readonly ok: false; readonly reason: string; readonly message: string };

/** Host → sandbox. */
export type HostMessage =
  | { readonly t: 'run'; readonly cells: readonly CellSource[]; readonly limits: RunLimits; readonly grants: RunGrants }
  | { readonly t: 'interrupt' }
  | { readonly t: 'fetched'; readonly id: number; readonly answer: BrokerAnswer }
  | { readonly t: 'probe'; readonly params: Readonly<Record<string, string>> };

const streamOutput = v.strictObject({
  output_type: v.literal('stream'),
  name: v.picklist(['stdout', 'stderr']),
  text: v.string(),
});
const executeResultOutput = v.strictObject({
  output_type: v.literal('execute_result'),
  execution_count: v.number(),
  data: v.strictObject({ 'text/plain': v.string() }),
  metadata: v.strictObject({}),
});
const errorOutput = v.strictObject({
  output_type: v.literal('error'),
  ename: v.string(),
  evalue: v.string(),
  traceback: v.array(v.string()),
});
export const outputSchema = v.variant('output_type', [streamOutput, executeResultOutput, errorOutput]);

const cellMessage = v.strictObject({
  t: v.literal('cell'),
  index: v.pipe(v.number(), v.integer(), v.minValue(0)),
  status: v.picklist(['ok', 'error']),
  ename: v.optional(v.string()),
  outputs: v.array(outputSchema),
  truncated: v.boolean(),
  heapMb: v.number(),
});

const shortString = (max: number) => v.pipe(v.string(), v.maxLength(max));

const fetchMessage = v.strictObject({
  t: v.literal('fetch'),
  id: v.pipe(v.number(), v.integer(), v.minValue(0)),
  method: shortString(16),
  url: shortString(8192),
  headers: v.pipe(v.array(v.tuple([shortString(256), shortString(8192)])), v.maxLength(128)),
  body: v.string(),
});

const auditMessage = v.strictObject({
  t: v.literal('audit'),
  events: v.pipe(
    v.array(
      v.strictObject({
        kind: v.picklist(['read', 'write', 'net', 'env', 'import']),
        value: shortString(512),
        allowed: v.boolean(),
        reason: v.optional(shortString(512)),
      }),
    ),
    v.maxLength(1000),
  ),
});

const filesMessage = v.strictObject({
  t: v.literal('files'),
  files: v.array(v.strictObject({ path: shortString(4096), data: v.string() })),
  truncated: v.boolean(),
});

/** Sandbox → host. */
export const sandboxMessageSchema = v.variant('t', [
  v.strictObject({ t: v.literal('ready'), python: v.string(), pyodide: v.string(), startupMs: v.number(), snapshot: v.boolean() }),
  v.strictObject({ t: v.literal('snapshot'), pyodide: v.string(), buildMs: v.number() }),
  cellMessage,
  fetchMessage,
  auditMessage,
  filesMessage,
  v.strictObject({ t: v.literal('done') }),
  v.strictObject({ t: v.literal('probe'), results: v.record(v.string(), v.string()) }),
  v.strictObject({ t: v.literal('fatal'), message: v.string() }),
]);

export type SandboxMessage = v.InferOutput<typeof sandboxMessageSchema>;
export type CellMessage = v.InferOutput<typeof cellMessage>;
export type FetchMessage = v.InferOutput<typeof fetchMessage>;
export type AuditMessage = v.InferOutput<typeof auditMessage>;
export type FilesMessage = v.InferOutput<typeof filesMessage>;
export type NotebookOutput = v.InferOutput<typeof outputSchema>;
