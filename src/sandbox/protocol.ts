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

/** Host → sandbox. */
export type HostMessage =
  | { readonly t: 'run'; readonly cells: readonly CellSource[]; readonly limits: RunLimits }
  | { readonly t: 'interrupt' }
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

/** Sandbox → host. */
export const sandboxMessageSchema = v.variant('t', [
  v.strictObject({ t: v.literal('ready'), python: v.string(), pyodide: v.string(), startupMs: v.number() }),
  cellMessage,
  v.strictObject({ t: v.literal('done') }),
  v.strictObject({ t: v.literal('probe'), results: v.record(v.string(), v.string()) }),
  v.strictObject({ t: v.literal('fatal'), message: v.string() }),
]);

export type SandboxMessage = v.InferOutput<typeof sandboxMessageSchema>;
export type CellMessage = v.InferOutput<typeof cellMessage>;
export type NotebookOutput = v.InferOutput<typeof outputSchema>;
