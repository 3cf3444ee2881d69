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

export interface ServerProcess {
  readonly child: import('node:child_process').ChildProcess;
  readonly url: string;
  readonly port: number;
  /** Audit log lines written so far. */
  readonly lines: () => readonly Record<string, unknown>[];
  /** Resident and peak memory of the server process (MiB), from /proc. */
  readonly memory: () => { rssMb: number; peakMb: number };
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
}

/** `nbsandbox serve` as its own process (the real entry point), listening on a free port. */
export async function startServerProcess(env: Record<string, string> = {}, options: { detached?: boolean } = {}): Promise<ServerProcess> {
  const { spawn } = await import('node:child_process');
  const { readFileSync } = await import('node:fs');
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'cli.js'), 'serve'], {
    env: { PATH: process.env['PATH'] ?? '', PORT: '0', NBS_RATE_LIMIT_CHECK: '0', NBS_RATE_LIMIT_RUN: '0', NBS_RATE_LIMIT_OTHER: '0', NBS_WARM_SANDBOXES: '1', NBS_MAX_RUNS: '2', NBS_CHECK_WORKERS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const parsed: Record<string, unknown>[] = [];
  let pending = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const listening = parsed.find((line) => line['event'] === 'listening');
      if (listening) {
        clearInterval(timer);
        resolve(String(listening['url']));
      }
    }, 25);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`the server exited (${code}) before listening: ${stderr.slice(-500)}`));
    });
  });
  const memory = () => {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const mib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN) / 1024;
    return { rssMb: mib('VmRSS'), peakMb: mib('VmHWM') };
  };
  return { child, url, port: Number(new URL(url).port), lines: () => parsed, memory, exited };
}
