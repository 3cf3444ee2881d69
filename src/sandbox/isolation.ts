/**
 * Detects which OS-level isolation this machine allows for sandbox processes. The Deno
 * permission layer is always on; an empty network namespace is added where unshare works
 * (as root, or with unprivileged user namespaces).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface IsolationReport {
  /** Each run has its own OS process, discarded after the run. */
  readonly process: true;
  /** The process runtime and how its permissions are set. */
  readonly runtime: 'deno';
  /** Deno permissions: read of the runtime's own files only; no write, net, env, run, ffi, sys, import. */
  readonly permissionModel: true;
  /** V8 refuses eval and new Function in the sandbox process. */
  readonly codegenDisabled: true;
  /** The process starts with an empty environment. */
  readonly emptyEnvironment: true;
  /** Python-level hardening (blocked bridge modules, no process functions) before user code. */
  readonly pythonHardening: true;
  /** The process runs in an empty network namespace. */
  readonly networkNamespace: boolean;
}

const UNSHARE = '/usr/bin/unshare';

/** Command prefixes that put a process into a new, empty network namespace, most direct first. */
const NAMESPACE_PREFIXES: readonly (readonly string[])[] = [
  [UNSHARE, '--net'],
  [UNSHARE, '--user', '--map-root-user', '--net'],
];

let detected: readonly string[] | null | undefined;

/** The command prefix to use for a network namespace, or null where the OS refuses one. */
export function networkNamespacePrefix(): readonly string[] | null {
  if (detected !== undefined) return detected;
  detected = null;
  if (process.platform === 'linux' && existsSync(UNSHARE) && process.env['NBS_NO_NETNS'] !== '1') {
    for (const prefix of NAMESPACE_PREFIXES) {
      const [command, ...args] = prefix as [string, ...string[]];
      const probe = spawnSync(command, [...args, '/bin/true'], { stdio: 'ignore', timeout: 5000, env: {} });
      if (probe.status === 0) {
        detected = prefix;
        break;
      }
    }
  }
  return detected;
}

/** The layers a run had; `networkNamespace` only where it was both wanted and available. */
export function isolationReport(namespaceWanted: boolean): IsolationReport {
  return {
    process: true,
    runtime: 'deno',
    permissionModel: true,
    codegenDisabled: true,
    emptyEnvironment: true,
    pythonHardening: true,
    networkNamespace: namespaceWanted && networkNamespacePrefix() !== null,
  };
}
