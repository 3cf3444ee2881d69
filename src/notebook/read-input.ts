/**
 * Reads an input file for checking or running: a regular file, within a size cap, valid UTF-8,
 * named .ipynb or .py. Every failure is an NbsError with a stable code and no host path in it.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { NbsError } from '../errors.js';

export type InputKind = 'ipynb' | 'py';

export interface InputFile {
  readonly kind: InputKind;
  readonly text: string;
}

export const DEFAULT_MAX_INPUT_BYTES = 16 * 1024 * 1024;

function kindOf(path: string): InputKind {
  const extension = extname(path).toLowerCase();
  if (extension === '.ipynb') return 'ipynb';
  if (extension === '.py') return 'py';
  throw new NbsError('NBS_INPUT_UNSUPPORTED_TYPE');
}

/** Decodes UTF-8 strictly (a leading BOM is dropped). */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new NbsError('NBS_INPUT_NOT_UTF8');
  }
}

/**
 * Reads a regular file of at most `maxBytes`. The cap is checked against the size at open and
 * again while reading, so a file that grows in between is still refused.
 */
export async function readBoundedFile(path: string, maxBytes: number): Promise<Uint8Array> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new NbsError('NBS_INPUT_NOT_FOUND');
    if (code === 'EISDIR') throw new NbsError('NBS_INPUT_NOT_FILE');
    throw new NbsError('NBS_INPUT_UNREADABLE', code);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new NbsError('NBS_INPUT_NOT_FILE');
    if (stat.size > maxBytes) throw new NbsError('NBS_INPUT_TOO_LARGE', `limit is ${maxBytes} bytes`);
    // One byte past the cap, so growth after stat shows.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw new NbsError('NBS_INPUT_TOO_LARGE', `limit is ${maxBytes} bytes`);
      if (length === buffer.length) break;
    }
    return buffer.subarray(0, length);
  } catch (error) {
    if (error instanceof NbsError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new NbsError('NBS_INPUT_NOT_FILE');
    throw new NbsError('NBS_INPUT_UNREADABLE', code);
  } finally {
    await handle.close();
  }
}

export async function readInputFile(path: string, maxBytes = DEFAULT_MAX_INPUT_BYTES): Promise<InputFile> {
  const bytes = await readBoundedFile(path, maxBytes);
  return { kind: kindOf(path), text: decodeUtf8(bytes) };
}
