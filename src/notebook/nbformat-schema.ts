/**
 * nbformat v4 as valibot schemas, following nbformat's own JSON Schemas (v4.0–v4.5): cells and
 * outputs are closed objects, metadata is open but its known keys are typed. Cell ids are checked
 * per minor version by the parser, since only 4.5 requires them.
 */
import * as v from 'valibot';

const multilineString = v.union([v.string(), v.array(v.string())]);
const cellId = v.pipe(v.string(), v.regex(/^[a-zA-Z0-9-_]+$/), v.minLength(1), v.maxLength(64));
const tags = v.pipe(
  v.array(v.pipe(v.string(), v.regex(/^[^,]+$/))),
  v.check((items) => new Set(items).size === items.length, 'unique tags'),
);
const isoDateTime = v.pipe(v.string(), v.isoTimestamp());
const executionCount = v.nullable(v.pipe(v.number(), v.integer(), v.minValue(0)));
const attachments = v.record(v.string(), v.record(v.string(), v.unknown()));

const sharedCellMetadata = {
  name: v.optional(v.string()),
  tags: v.optional(tags),
};
const sourceHidden = v.optional(v.looseObject({ source_hidden: v.optional(v.boolean()) }));

const rawCell = v.strictObject({
  id: v.optional(cellId),
  cell_type: v.literal('raw'),
  metadata: v.looseObject({ ...sharedCellMetadata, format: v.optional(v.string()), jupyter: sourceHidden }),
  attachments: v.optional(attachments),
  source: multilineString,
});

const markdownCell = v.strictObject({
  id: v.optional(cellId),
  cell_type: v.literal('markdown'),
  metadata: v.looseObject({ ...sharedCellMetadata, jupyter: sourceHidden }),
  attachments: v.optional(attachments),
  source: multilineString,
});

const mimeBundle = v.record(v.string(), v.unknown());
const outputMetadata = v.record(v.string(), v.unknown());
const output = v.variant('output_type', [
  v.strictObject({
    output_type: v.literal('execute_result'),
    execution_count: executionCount,
    data: mimeBundle,
    metadata: outputMetadata,
  }),
  v.strictObject({
    output_type: v.literal('display_data'),
    data: mimeBundle,
    metadata: outputMetadata,
    transient: v.optional(v.record(v.string(), v.unknown())),
  }),
  v.strictObject({ output_type: v.literal('stream'), name: v.string(), text: multilineString }),
  v.strictObject({
    output_type: v.literal('error'),
    ename: v.string(),
    evalue: v.string(),
    traceback: v.array(v.string()),
  }),
]);

const codeCell = v.strictObject({
  id: v.optional(cellId),
  cell_type: v.literal('code'),
  metadata: v.looseObject({
    ...sharedCellMetadata,
    jupyter: v.optional(
      v.looseObject({ source_hidden: v.optional(v.boolean()), outputs_hidden: v.optional(v.boolean()) }),
    ),
    execution: v.optional(
      v.looseObject({
        'iopub.execute_input': v.optional(isoDateTime),
        'iopub.status.busy': v.optional(isoDateTime),
        'shell.execute_reply': v.optional(isoDateTime),
        'iopub.status.idle': v.optional(isoDateTime),
      }),
    ),
    collapsed: v.optional(v.boolean()),
    scrolled: v.optional(v.union([v.boolean(), v.literal('auto')])),
  }),
  source: multilineString,
  outputs: v.array(output),
  execution_count: executionCount,
});

export const cellSchema = v.variant('cell_type', [codeCell, markdownCell, rawCell]);
export type RawNotebookCell = v.InferOutput<typeof cellSchema>;

export const notebookSchema = v.strictObject({
  nbformat: v.literal(4),
  nbformat_minor: v.pipe(v.number(), v.integer(), v.minValue(0)),
  metadata: v.looseObject({
    kernelspec: v.optional(v.looseObject({ name: v.string(), display_name: v.string() })),
    language_info: v.optional(
      v.looseObject({
        name: v.string(),
        codemirror_mode: v.optional(v.union([v.string(), v.record(v.string(), v.unknown())])),
        file_extension: v.optional(v.string()),
        mimetype: v.optional(v.string()),
        pygments_lexer: v.optional(v.string()),
      }),
    ),
    orig_nbformat: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
    title: v.optional(v.string()),
    authors: v.optional(v.array(v.looseObject({ name: v.optional(v.string()) }))),
  }),
  cells: v.array(cellSchema),
});

/** Keys of nbformat itself: safe to name in error messages (other keys may carry user text). */
export const NBFORMAT_KEYS = new Set([
  'nbformat', 'nbformat_minor', 'metadata', 'cells', 'cell_type', 'id', 'source', 'outputs', 'output_type',
  'execution_count', 'attachments', 'data', 'text', 'name', 'ename', 'evalue', 'traceback', 'transient',
  'kernelspec', 'display_name', 'language_info', 'codemirror_mode', 'file_extension', 'mimetype',
  'pygments_lexer', 'orig_nbformat', 'title', 'authors', 'tags', 'jupyter', 'source_hidden',
  'outputs_hidden', 'execution', 'collapsed', 'scrolled', 'format', 'iopub.execute_input',
  'iopub.status.busy', 'shell.execute_reply', 'iopub.status.idle',
]);
