/** Turns an input file into the code cells a run executes and the input a check analyses. */
import { NbsError } from '../errors.js';
import type { CheckInput } from '../check/types.js';
import { isMarimoSource } from '../check/marimo-detect.js';
import type { CodeCell } from '../sandbox/types.js';
import { parseIpynb } from './ipynb.js';
import { readInputFile, DEFAULT_MAX_INPUT_BYTES } from './read-input.js';

export {
  parseIpynb,
  DEFAULT_MAX_CELLS,
  DEFAULT_MAX_OUTPUT_BYTES_SCANNED,
  type Notebook,
  type NotebookCell,
  type NotebookLimits,
} from './ipynb.js';
export { readInputFile, DEFAULT_MAX_INPUT_BYTES, type InputFile } from './read-input.js';

export interface InputLimits {
  readonly maxFileBytes?: number;
  readonly maxCells?: number;
  readonly maxCellBytes?: number;
  readonly maxOutputBytesScanned?: number;
}

export interface LoadedInput {
  readonly kind: 'ipynb' | 'py' | 'marimo';
  /** Code cells to run, in order. */
  readonly cells: readonly CodeCell[];
  /** What the static check analyses. */
  readonly check: CheckInput;
}

function checkCellSizes(cells: readonly CodeCell[], maxCellBytes: number): void {
  for (const cell of cells) {
    if (Buffer.byteLength(cell.source, 'utf8') > maxCellBytes) {
      throw new NbsError('NBS_INPUT_TOO_LARGE', `cell ${cell.index ?? 0} is larger than ${maxCellBytes} bytes`);
    }
  }
}

/** Builds the loaded form of a source text whose kind is known (used for files and uploads). */
export function loadInputText(kind: 'ipynb' | 'py', text: string, limits: InputLimits = {}): LoadedInput {
  const maxCellBytes = limits.maxCellBytes ?? Number.POSITIVE_INFINITY;
  if (kind === 'py') {
    const cells = [{ index: 0, source: text }];
    checkCellSizes(cells, maxCellBytes);
    if (isMarimoSource(text)) return { kind: 'marimo', cells, check: { kind: 'marimo', source: text } };
    return { kind: 'py', cells, check: { kind: 'cells', cells } };
  }
  const notebook = parseIpynb(text, limits);
  const cells = notebook.cells
    .filter((cell) => cell.cellType === 'code')
    .map((cell) => ({ index: cell.index, source: cell.source, ...(cell.id !== undefined ? { id: cell.id } : {}) }));
  checkCellSizes(cells, maxCellBytes);
  return { kind: 'ipynb', cells, check: { kind: 'cells', cells } };
}

export async function loadInputFile(path: string, limits: InputLimits = {}): Promise<LoadedInput> {
  const input = await readInputFile(path, limits.maxFileBytes ?? DEFAULT_MAX_INPUT_BYTES);
  return loadInputText(input.kind, input.text, limits);
}
