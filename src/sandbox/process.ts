/**
 * One sandbox OS process: Deno with deny-by-default permissions running Pyodide, optionally in
 * an empty network namespace. Used for exactly one run, then killed.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import { LineReader } from './line-reader.js';
import { withinShape } from './message-shape.js';
import type { RuntimeFiles } from './locate.js';
import { sandboxMessageSchema, type HostMessage, type SandboxMessage } from './protocol.js';

export interface SandboxProcessOptions {
  readonly files: RuntimeFiles;
  /** Command prefix that enters an empty network namespace, or null. */
  readonly networkNamespace: readonly string[] | null;
  /** Most bytes accepted, in one line and in all, before a run sets its own limits (start-up messages). */
  readonly maxMessageBytes: number;
  /** Test-only: a module imported inside the sandbox process to probe its permissions. */
  readonly probeModule?: string;
  /** A Pyodide package directory (pyodide-lock.json and wheels) the process may read. */
  readonly packageDir?: string;
  /**
   * Start from a verified memory snapshot (`load`), or build one into a file and stop (`make`,
   * the only case in which the process may write, and only that file).
   */
  readonly snapshot?: { readonly kind: 'load' | 'make'; readonly path: string };
}

export interface ReadyInfo {
  readonly python: string;
  readonly pyodide: string;
  readonly startupMs: number;
  /** Whether the interpreter was restored from a snapshot. */
  readonly snapshot: boolean;
}

export interface ProcessMemory {
  readonly rssMb: number;
  readonly peakRssMb: number;
}

type Child = ChildProcessByStdio<Writable, Readable, Readable>;

const STDERR_TAIL_BYTES = 8192;

function denoArguments(options: SandboxProcessOptions): string[] {
  const { files, probeModule, packageDir, snapshot } = options;
  const readable = [
    files.pyodideDir,
    files.runtimeDir,
    files.wasmDir,
    ...(packageDir ? [packageDir] : []),
    ...(snapshot?.kind === 'load' ? [snapshot.path] : []),
    ...(probeModule ? [probeModule] : []),
  ];
  const snapshotArgument = !snapshot ? '-' : snapshot.kind === 'load' ? `load:${pathToFileURL(snapshot.path).href}` : `make:${snapshot.path}`;
  const directoryUrl = (path: string) => pathToFileURL(path).href.replace(/\/?$/, '/');
  return [
    'run',
    '--no-prompt',
    '--no-config',
    '--no-lock',
    '--no-remote',
    '--no-npm',
    '--cached-only',
    '--no-code-cache',
    `--allow-read=${readable.join(',')}`,
    snapshot?.kind === 'make' ? `--allow-write=${snapshot.path}` : '--deny-write',
    '--deny-net',
    '--deny-env',
    '--deny-sys',
    '--deny-run',
    '--deny-ffi',
    '--deny-import',
    `--v8-flags=--disallow-code-generation-from-strings,--max-old-space-size=512${snapshot?.kind === 'load' ? ',--expose-gc' : ''}`,
    join(files.runtimeDir, 'main.js'),
    directoryUrl(files.pyodideDir),
    directoryUrl(files.wasmDir),
    packageDir ? directoryUrl(packageDir) : '-',
    snapshotArgument,
    ...(probeModule ? [pathToFileURL(probeModule).href] : []),
  ];
}

export class SandboxProcess {
  readonly ready: Promise<ReadyInfo>;
  /** Resolves when the process has exited and its scratch directory is gone. */
  readonly exited: Promise<void>;
  private readonly child: Child;
  private readonly denoDir: string;
  private readonly listeners = new Set<(message: SandboxMessage) => void>();
  private stderrTail = '';
  private exitedFlag = false;
  private readyFlag = false;
  private failure: NbsError | undefined;
  private incomingBudget: number;
  private readonly lines: LineReader;

  constructor(options: SandboxProcessOptions) {
    this.incomingBudget = options.maxMessageBytes;
    this.lines = new LineReader(
      options.maxMessageBytes,
      (line) => this.dispatch(line),
      () => this.fail(new NbsError('NBS_SANDBOX_PROTOCOL', 'a message is longer than allowed')),
    );
    // Deno keeps caches and web storage (localStorage, caches) in DENO_DIR: a private, throwaway
    // one per process means nothing a run stores there can reach a later run.
    this.denoDir = mkdtempSync(join(tmpdir(), 'nbsandbox-'));
    const argv = [...(options.networkNamespace ?? []), options.files.denoPath, ...denoArguments(options)];
    const [command, ...args] = argv as [string, ...string[]];
    this.child = spawn(command, args, {
      cwd: '/',
      env: {
        DENO_DIR: this.denoDir,
        DENO_NO_UPDATE_CHECK: '1',
        DENO_NO_PACKAGE_JSON: '1',
        NO_COLOR: '1',
        // glibc otherwise keeps a malloc arena per thread and serves big buffers from them, so
        // an idle process holds on to what start-up freed (measured: ~25 MiB per process).
        MALLOC_ARENA_MAX: '1',
        MALLOC_MMAP_THRESHOLD_: String(1024 * 1024),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group: a signal sent to the host's group (Ctrl-C, systemd's
      // KillMode=control-group) must not end runs the host means to finish during a graceful
      // shutdown. The host ends every sandbox itself, and one whose host died sees its stdin
      // close and exits.
      detached: true,
    });
    this.exited = new Promise((resolve) => {
      this.child.once('close', () => {
        this.exitedFlag = true;
        rmSync(this.denoDir, { recursive: true, force: true });
        resolve();
      });
    });
    this.child.once('error', (error) => this.fail(new NbsError('NBS_SANDBOX_START_FAILED', undefined, { cause: error })));
    this.child.stdin.on('error', () => undefined);
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.subarray(-STDERR_TAIL_BYTES).toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    this.readMessages();
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      const onMessage = (message: SandboxMessage) => {
        if (message.t === 'ready') {
          this.listeners.delete(onMessage);
          this.readyFlag = true;
          resolve({ python: message.python, pyodide: message.pyodide, startupMs: message.startupMs, snapshot: message.snapshot });
        } else if (message.t === 'fatal') {
          reject(new NbsError('NBS_SANDBOX_START_FAILED', undefined, { cause: new Error(message.message) }));
        }
      };
      this.listeners.add(onMessage);
      void this.exited.then(() => reject(this.failure ?? new NbsError('NBS_SANDBOX_START_FAILED', undefined, { cause: new Error(this.stderrTail) })));
    });
    this.ready.catch(() => undefined);
  }

  get hasExited(): boolean {
    return this.exitedFlag;
  }

  /** The interpreter reported ready (it may have exited since). */
  get hasStarted(): boolean {
    return this.readyFlag;
  }

  /** The error that ended this process, if the host ended it for misbehaving. */
  get failureReason(): NbsError | undefined {
    return this.failure;
  }

  onMessage(listener: (message: SandboxMessage) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Caps what the process may send from now on: the longest line and all bytes together. A
   * sandbox that sends more than a run can legitimately amount to is broken or hostile, and is
   * killed before host memory or CPU grows with it.
   */
  limitIncoming(limits: { readonly maxLineBytes: number; readonly maxTotalBytes: number }): void {
    this.lines.maxLineBytes = limits.maxLineBytes;
    this.incomingBudget = limits.maxTotalBytes;
  }

  send(message: HostMessage): void {
    if (this.exitedFlag || !this.child.stdin.writable) return;
    this.child.stdin.write(JSON.stringify(message) + '\n');
  }

  /** Resident and peak memory of the process from /proc, or null where /proc is unavailable. */
  memory(): ProcessMemory | null {
    if (this.exitedFlag || this.child.pid === undefined) return null;
    try {
      const status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      const rss = kib('VmRSS');
      const peak = kib('VmHWM');
      if (!Number.isFinite(rss)) return null;
      return { rssMb: rss / 1024, peakRssMb: (Number.isFinite(peak) ? peak : rss) / 1024 };
    } catch {
      return null;
    }
  }

  /** Ends the process at once (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    if (!this.exitedFlag) this.child.kill('SIGKILL');
    await this.exited;
  }

  private fail(error: NbsError): void {
    this.failure ??= error;
    if (!this.exitedFlag) this.child.kill('SIGKILL');
  }

  private readMessages(): void {
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.incomingBudget -= chunk.length;
      if (this.incomingBudget < 0) {
        this.lines.stop();
        this.fail(new NbsError('NBS_SANDBOX_PROTOCOL', 'the sandbox sent more than its limits allow'));
        return;
      }
      this.lines.push(chunk);
    });
  }

  private dispatch(line: Buffer): void {
    if (this.failure) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line.toString('utf8'));
    } catch {
      this.fail(new NbsError('NBS_SANDBOX_PROTOCOL', 'not JSON'));
      return;
    }
    const checked = withinShape(parsed) ? v.safeParse(sandboxMessageSchema, parsed, { abortEarly: true }) : null;
    if (!checked?.success) {
      this.fail(new NbsError('NBS_SANDBOX_PROTOCOL', 'unknown message'));
      return;
    }
    // A failure while handling one message must cost this run only, never the host process.
    try {
      for (const listener of [...this.listeners]) listener(checked.output);
    } catch (error) {
      this.fail(new NbsError('NBS_INTERNAL', 'the host failed to handle a message of the sandbox', { cause: error }));
    }
  }
}
