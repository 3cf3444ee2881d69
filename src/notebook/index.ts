/** Turns an input file into the code cells a run executes. */
import type { CodeCell } from '../sandbox/types.js';
import { parseIpynb } from './ipynb.js';
import { readInputFile, DEFAULT_MAX_INPUT_BYTES } from './read-input.js';

export { parseIpynb, type Notebook, type NotebookCell } from './ipynb.js';
export { readInputFile, DEFAULT_MAX_INPUT_BYTES, type InputFile } from './read-input.js';

export interface LoadedInput {
  readonly kind: 'ipynb' | 'py';
  readonly cells: readonly CodeCell[];
}

export async function loadInputFile(path: string, maxBytes = DEFAULT_MAX_INPUT_BYTES): Promise<LoadedInput> {
  const input = await readInputFile(path, maxBytes);
  if (input.kind === 'py') return { kind: 'py', cells: [{ index: 0, source: input.text }] };
  const notebook = parseIpynb(input.text);
  const cells = notebook.cells
    .filter((cell) => cell.cellType === 'code')
    .map((cell) => ({ index: cell.index, source: cell.source, ...(cell.id !== undefined ? { id: cell.id } : {}) }));
  return { kind: 'ipynb', cells };
}
