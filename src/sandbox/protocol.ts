/**
 * The message channel between the host and a sandbox process: newline-delimited JSON over the
 * process's stdin (host → sandbox) and stdout (sandbox → host). Both sides check every message;
 * the host treats anything malformed as a broken sandbox and kills it.
 */
import * as v from 'valibot';
import { FILE_CHUNK_BYTES } from './runtime/wire-sizes.js';

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

const shortString = (max: number) => v.pipe(v.string(), v.maxLength(max));
const cellIndex = v.pipe(v.number(), v.integer(), v.minValue(0));

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
  ename: shortString(256),
  evalue: v.string(),
  traceback: v.pipe(v.array(v.string()), v.maxLength(1024)),
});
export const outputSchema = v.variant('output_type', [streamOutput, executeResultOutput, errorOutput]);

/** Text a cell wrote to stdout or stderr, batched by the sandbox process; never empty. */
const streamMessage = v.strictObject({
  t: v.literal('stream'),
  index: cellIndex,
  name: v.picklist(['stdout', 'stderr']),
  text: v.pipe(v.string(), v.minLength(1)),
});

/** A result or error of a cell (streams come as `stream` messages). */
const outputMessage = v.strictObject({
  t: v.literal('output'),
  index: cellIndex,
  output: v.variant('output_type', [executeResultOutput, errorOutput]),
});

const startMessage = v.strictObject({ t: v.literal('start'), index: cellIndex });
const endMessage = v.strictObject({
  t: v.literal('end'),
  index: cellIndex,
  status: v.picklist(['ok', 'error']),
  /** The sandbox cut a result or message to its cap. */
  truncated: v.boolean(),
});
/** A stream reached its cap inside the sandbox; the run stops after the current cell. */
const limitMessage = v.strictObject({ t: v.literal('limit'), stream: v.picklist(['stdout', 'stderr']) });


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
    v.minLength(1),
    v.maxLength(1000),
  ),
});

/** One piece of a file the run wrote; the pieces of a file come in order, the last with `final`. */
const fileMessage = v.strictObject({
  t: v.literal('file'),
  path: shortString(4096),
  data: shortString(Math.ceil(FILE_CHUNK_BYTES / 3) * 4),
  final: v.boolean(),
});
/** Every written file has been sent; `truncated` when the sandbox left some out for the caps. */
const filesMessage = v.strictObject({ t: v.literal('files'), truncated: v.boolean() });

/** Sandbox → host. */
export const sandboxMessageSchema = v.variant('t', [
  v.strictObject({ t: v.literal('ready'), python: v.string(), pyodide: v.string(), startupMs: v.number(), snapshot: v.boolean() }),
  v.strictObject({ t: v.literal('snapshot'), pyodide: v.string(), buildMs: v.number() }),
  startMessage,
  streamMessage,
  outputMessage,
  endMessage,
  limitMessage,
  fetchMessage,
  auditMessage,
  fileMessage,
  filesMessage,
  v.strictObject({ t: v.literal('done') }),
  v.strictObject({ t: v.literal('probe'), results: v.record(v.string(), v.string()) }),
  v.strictObject({ t: v.literal('fatal'), message: v.string() }),
]);

export type SandboxMessage = v.InferOutput<typeof sandboxMessageSchema>;
export type FetchMessage = v.InferOutput<typeof fetchMessage>;
export type AuditMessage = v.InferOutput<typeof auditMessage>;
export type NotebookOutput = v.InferOutput<typeof outputSchema>;
