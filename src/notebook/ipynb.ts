/**
 * Parses a Jupyter notebook (nbformat 4.0–4.5) into its cells. This checks the structure the
 * sandbox relies on; unsupported versions and malformed cells are rejected with stable codes.
 */
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import { describeIssues } from '../issues.js';

export interface NotebookCell {
  /** Position in the notebook, counting every cell type. */
  readonly index: number;
  readonly id?: string;
  readonly cellType: 'code' | 'markdown' | 'raw';
  readonly source: string;
}

export interface Notebook {
  readonly nbformat: 4;
  readonly nbformatMinor: number;
  readonly cells: readonly NotebookCell[];
}

export const DEFAULT_MAX_CELLS = 5000;

const MAX_MINOR = 5;
const CELL_ID = /^[a-zA-Z0-9-_]{1,64}$/;

const sourceSchema = v.union([v.string(), v.array(v.string())]);
const cellSchema = v.looseObject({
  cell_type: v.picklist(['code', 'markdown', 'raw']),
  id: v.optional(v.pipe(v.string(), v.regex(CELL_ID))),
  source: sourceSchema,
  metadata: v.looseObject({}),
});
const versionSchema = v.looseObject({
  nbformat: v.pipe(v.number(), v.integer()),
  nbformat_minor: v.pipe(v.number(), v.integer(), v.minValue(0)),
});
const notebookSchema = v.looseObject({
  metadata: v.looseObject({}),
  cells: v.array(cellSchema),
});

const NOTEBOOK_KEYS = new Set(['nbformat', 'nbformat_minor', 'metadata', 'cells', 'cell_type', 'id', 'source']);
const describe = (issues: readonly v.BaseIssue<unknown>[]) => describeIssues(issues, 'notebook', (key) => NOTEBOOK_KEYS.has(key));

export function parseIpynb(text: string, maxCells = DEFAULT_MAX_CELLS): Notebook {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new NbsError('NBS_NOTEBOOK_INVALID_JSON');
  }
  const major = (json as { nbformat?: unknown } | null)?.nbformat;
  if (Number.isInteger(major) && major !== 4) {
    throw new NbsError('NBS_NOTEBOOK_UNSUPPORTED_VERSION', `nbformat ${String(major)}; supported: 4.0 to 4.${MAX_MINOR}`);
  }
  const version = v.safeParse(versionSchema, json);
  if (!version.success) throw new NbsError('NBS_NOTEBOOK_INVALID', describe(version.issues));
  const { nbformat_minor: minor } = version.output;
  if (minor > MAX_MINOR) {
    throw new NbsError('NBS_NOTEBOOK_UNSUPPORTED_VERSION', `nbformat 4.${minor}; supported: 4.0 to 4.${MAX_MINOR}`);
  }
  const cellCount = (json as { cells?: unknown }).cells;
  if (Array.isArray(cellCount) && cellCount.length > maxCells) {
    throw new NbsError('NBS_NOTEBOOK_TOO_MANY_CELLS', `limit is ${maxCells}`);
  }
  const parsed = v.safeParse(notebookSchema, json);
  if (!parsed.success) throw new NbsError('NBS_NOTEBOOK_INVALID', describe(parsed.issues));

  const seenIds = new Set<string>();
  const cells = parsed.output.cells.map((cell, index): NotebookCell => {
    if (minor >= 5) {
      if (cell.id === undefined) throw new NbsError('NBS_NOTEBOOK_INVALID', `cells.${index}.id: required from nbformat 4.5`);
      if (seenIds.has(cell.id)) throw new NbsError('NBS_NOTEBOOK_INVALID', `cells.${index}.id: not unique`);
      seenIds.add(cell.id);
    }
    return {
      index,
      cellType: cell.cell_type,
      source: Array.isArray(cell.source) ? cell.source.join('') : cell.source,
      ...(cell.id !== undefined ? { id: cell.id } : {}),
    };
  });
  return { nbformat: 4, nbformatMinor: minor, cells };
}
