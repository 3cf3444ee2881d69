/** Shared fixtures for tests that use the real sandbox. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
