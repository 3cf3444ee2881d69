/** Shared fixtures for tests that use the real sandbox. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type RunResult, type Sandbox, type SandboxOptions } from '../dist/index.js';

/** Everything the run printed or reported, as one string to search for leaked secrets. */
export function everything(result: RunResult): string {
  return JSON.stringify(result);
}

/** A host file and env variable with random contents that no run may ever see. */
export interface Canaries {
  readonly dir: string;
  readonly file: string;
  readonly fileSecret: string;
  readonly envName: string;
  readonly envSecret: string;
}

export function makeCanaries(): Canaries {
  const dir = mkdtempSync(join(tmpdir(), 'nbs-canary-'));
  const file = join(dir, 'secret.txt');
  const fileSecret = `file-secret-${randomBytes(12).toString('hex')}`;
  writeFileSync(file, fileSecret);
  const envName = 'NBS_TEST_CANARY';
  const envSecret = `env-secret-${randomBytes(12).toString('hex')}`;
  process.env[envName] = envSecret;
  return { dir, file, fileSecret, envName, envSecret };
}

export async function sharedSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  return createSandbox({ warmProcesses: 2, maxConcurrentRuns: 2, ...options });
}

/** The project's root (dist-test/ is one level below it). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Small notebooks the project wrote itself: every nbformat version, invalid ones, magics, marimo. */
export const NOTEBOOKS = join(ROOT, 'test', 'fixtures', 'notebooks');

/**
 * A folder of the shared corpus (real notebooks by others, nbformat's own test files) that CI
 * puts beside the project, or a reason to skip when it is not there: the project's own tests
 * never depend on it.
 */
export function sharedCorpus(folder: string): { readonly dir: string; readonly skip: false } | { readonly dir: string; readonly skip: string } {
  const dir = join(ROOT, '..', 'shared', 'corpus', folder);
  return existsSync(dir) ? { dir, skip: false } : { dir, skip: `the shared corpus (../shared/corpus/${folder}) is not beside the project` };
}
