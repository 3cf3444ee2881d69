/**
 * Turns a run's permissions into what the sandbox receives (granted files, variables, lists)
 * and what the host does for it during the run (brokered requests, collecting written files).
 * Everything is checked here, on the host; the sandbox is never trusted to check itself.
 */
import { NbsError } from '../../errors.js';
import type { BrokerAnswer, FetchMessage, FilesMessage, RunGrants } from '../protocol.js';
import type { AuditEvent, RunPermissions, WrittenFile } from '../types.js';
import { grantedEnvironment, importLists } from './env.js';
import { PERMISSION_KINDS } from './from-policy.js';
import { isIP } from 'node:net';
import { compileNetRules, createGuardedFetcher } from './net.js';
import type { PackageIndex } from './packages.js';
import { acceptWrittenFiles, collectReadGrants, readRules } from './paths.js';

/** An audit event before the sandbox stamps it with the run id and time. */
export type HostEvent = Omit<AuditEvent, 'runId' | 'time'>;

export interface PermissionCaps {
  /** Files and bytes copied in through `read` grants. */
  readonly maxReadFiles: number;
  readonly maxReadBytes: number;
  /** Files and bytes collected from `write` grants after the run. */
  readonly maxWriteFiles: number;
  readonly maxWriteBytes: number;
  /** Requests through the broker per run. */
  readonly maxRequests: number;
  readonly maxResponseBytes: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_PERMISSION_CAPS: PermissionCaps = {
  maxReadFiles: 1000,
  maxReadBytes: 64 * 1024 * 1024,
  maxWriteFiles: 1000,
  maxWriteBytes: 64 * 1024 * 1024,
  maxRequests: 256,
  maxResponseBytes: 16 * 1024 * 1024,
  requestTimeoutMs: 30_000,
};

export interface PreparedRun {
  readonly grants: RunGrants;
  /** Extra bytes the sandbox may legitimately send: the written files, base64. */
  readonly incomingBytes: number;
  /** Performs one brokered request; never rejects. */
  fetch(request: FetchMessage): Promise<BrokerAnswer>;
  acceptFiles(message: FilesMessage): { files: WrittenFile[]; truncated: boolean };
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const KINDS: ReadonlySet<string> = new Set(PERMISSION_KINDS);

/** `{ kind: { allow?: string[], deny?: string[] } }` and nothing else. */
function checkShape(permissions: unknown): asserts permissions is RunPermissions {
  const invalid = () => new NbsError('NBS_OPTION_INVALID', 'permissions must be { read|write|net|env|import: { allow?: [...], deny?: [...] } }');
  if (typeof permissions !== 'object' || permissions === null || Array.isArray(permissions)) throw invalid();
  for (const [kind, list] of Object.entries(permissions)) {
    if (!KINDS.has(kind)) throw invalid();
    if (list === undefined) continue;
    if (typeof list !== 'object' || list === null || Array.isArray(list)) throw invalid();
    for (const [key, entries] of Object.entries(list as object)) {
      if ((key !== 'allow' && key !== 'deny') || (entries !== undefined && (!Array.isArray(entries) || !entries.every((entry) => typeof entry === 'string')))) throw invalid();
    }
  }
}

/** Checks and resolves a run's permissions; throws NBS_OPTION_INVALID or NBS_PERMISSION_TOO_LARGE. */
export async function prepareRun(
  permissions: RunPermissions,
  emit: (event: HostEvent) => void,
  caps: PermissionCaps = DEFAULT_PERMISSION_CAPS,
  resolve?: (host: string) => Promise<readonly string[]>,
  packageIndex?: PackageIndex,
): Promise<PreparedRun> {
  checkShape(permissions);
  const read = readRules(permissions.read ?? {});
  const write = readRules(permissions.write ?? {});
  const rules = compileNetRules(permissions.net ?? {});
  const env = grantedEnvironment(permissions.env);
  const importList = importLists(permissions.import);
  const selection = packageIndex?.select(importList.allow) ?? { packages: [], imports: [] };
  const imports = { allow: [...new Set([...importList.allow, ...selection.imports])], deny: importList.deny };

  const collected = await collectReadGrants(read, { maxFiles: caps.maxReadFiles, maxBytes: caps.maxReadBytes });
  for (const event of collected.events) emit({ ...event, source: 'host' });
  for (const name of Object.keys(env)) emit({ kind: 'env', value: name, allowed: true, source: 'host' });

  const fetcher = createGuardedFetcher({
    rules,
    // Only a non-public address named by an allow entry itself may be reached.
    allowAddresses: rules.listedAddresses,
    maxResponseBytes: caps.maxResponseBytes,
    timeoutMs: caps.requestTimeoutMs,
    ...(resolve ? { resolve: async (host: string) => (await resolve(host)).map((address) => ({ address, family: isIP(address) })) } : {}),
    onEvent: (event) => emit({ ...event, source: 'host' }),
  });
  let requests = 0;
  let busy = false;

  const grants: RunGrants = {
    files: collected.files.map((file) => ({ path: file.path, data: base64(file.bytes) })),
    directories: [...collected.directories, ...write.allow],
    // Paths the host refused on the way (denied entries, symlinks out) fail inside as denials.
    read: {
      allow: read.allow,
      deny: [...read.deny, ...collected.refused],
    },
    write,
    imports,
    env,
    packages: selection.packages,
    writeCaps: { maxFiles: caps.maxWriteFiles, maxBytes: caps.maxWriteBytes },
  };

  return {
    grants,
    incomingBytes: Math.ceil((caps.maxWriteBytes * 4) / 3) + caps.maxWriteFiles * 8192,
    async fetch(request) {
      if (busy) return { ok: false, reason: 'failed', message: 'one request at a time' };
      requests += 1;
      if (requests > caps.maxRequests) return { ok: false, reason: 'failed', message: `a run may make at most ${caps.maxRequests} requests` };
      busy = true;
      try {
        const outcome = await fetcher({
          method: request.method,
          url: request.url,
          headers: request.headers,
          body: Buffer.from(request.body, 'base64'),
        });
        if (!outcome.ok) return { ok: false, reason: outcome.reason, message: outcome.message };
        const { response } = outcome;
        return {
          ok: true,
          status: response.status,
          statusText: response.statusText,
          url: response.url,
          headers: response.headers,
          body: base64(response.body),
        };
      } catch {
        return { ok: false, reason: 'failed', message: 'the request failed' };
      } finally {
        busy = false;
      }
    },
    acceptFiles(message) {
      const decoded = message.files.map((file) => ({ path: file.path, bytes: Buffer.from(file.data, 'base64') }));
      const accepted = acceptWrittenFiles(write, decoded, { maxFiles: caps.maxWriteFiles, maxBytes: caps.maxWriteBytes });
      for (const event of accepted.events) emit({ ...event, source: 'host' });
      return {
        files: accepted.files.map((file) => ({ path: file.path, size: file.bytes.length, data: base64(file.bytes) })),
        truncated: accepted.truncated || message.truncated,
      };
    },
  };
}
