/**
 * Parses a Jupyter notebook (nbformat 4.0–4.5) into its cells. This checks the structure the
 * sandbox relies on; unsupported versions and malformed cells are rejected with stable codes.
 */
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import { describeIssues } from '../issues.js';
import { MAX_JSON_DEPTH, jsonNestsDeeper } from '../shared/json-depth.js';
import { NBFORMAT_KEYS, notebookSchema } from './nbformat-schema.js';

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

const versionSchema = v.looseObject({
  nbformat: v.pipe(v.number(), v.integer()),
  nbformat_minor: v.pipe(v.number(), v.integer(), v.minValue(0)),
});

const describe = (issues: readonly v.BaseIssue<unknown>[]) =>
  describeIssues(issues, 'notebook', (key) => NBFORMAT_KEYS.has(key));

export const DEFAULT_MAX_OUTPUT_BYTES_SCANNED = 8 * 1024 * 1024;

export interface NotebookLimits {
  /** Cells of any type. Default 5000. */
  readonly maxCells?: number;
  /** Stored outputs, summed over cells as JSON text. nbsandbox never runs or shows them, so a
   * notebook mostly made of old outputs is refused rather than validated at length. Default 8 MiB. */
  readonly maxOutputBytesScanned?: number;
}

function outputBytes(cells: readonly unknown[]): number {
  let total = 0;
  for (const cell of cells) {
    const outputs = (cell as { outputs?: unknown } | null)?.outputs;
    if (outputs !== undefined) total += JSON.stringify(outputs)?.length ?? 0;
  }
  return total;
}

export function parseIpynb(text: string, limits: NotebookLimits = {}): Notebook {
  const maxCells = limits.maxCells ?? DEFAULT_MAX_CELLS;
  const maxOutputBytesScanned = limits.maxOutputBytesScanned ?? DEFAULT_MAX_OUTPUT_BYTES_SCANNED;
  if (jsonNestsDeeper(text)) throw new NbsError('NBS_NOTEBOOK_INVALID', `nested deeper than ${MAX_JSON_DEPTH} levels`);
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
  const rawCells = (json as { cells?: unknown }).cells;
  if (Array.isArray(rawCells)) {
    if (rawCells.length > maxCells) throw new NbsError('NBS_NOTEBOOK_TOO_MANY_CELLS', `limit is ${maxCells}`);
    if (outputBytes(rawCells) > maxOutputBytesScanned) {
      throw new NbsError('NBS_INPUT_TOO_LARGE', `stored outputs exceed ${maxOutputBytesScanned} bytes; clear the outputs and upload again`);
    }
  }
  const parsed = v.safeParse(notebookSchema, json);
  if (!parsed.success) throw new NbsError('NBS_NOTEBOOK_INVALID', describe(parsed.issues));

  const seenIds = new Set<string>();
  const cells = parsed.output.cells.map((cell, index): NotebookCell => {
    if (minor >= 5) {
      if (cell.id === undefined) throw new NbsError('NBS_NOTEBOOK_INVALID', `cells.${index}.id: required from nbformat 4.5`);
      // nbformat's validator refuses duplicates too (it can renumber them, which would change
      // what findings point at, so nbsandbox asks for a fixed notebook instead).
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
