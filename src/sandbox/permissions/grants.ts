/**
 * Turns a run's permissions into what the sandbox receives (granted files, variables, lists)
 * and what the host does for it during the run (brokered requests, collecting written files).
 * Everything is checked here, on the host; the sandbox is never trusted to check itself.
 */
import { NbsError } from '../../errors.js';
import type { BrokerAnswer, FetchMessage, RunGrants } from '../protocol.js';
import { FILE_CHUNK_BYTES } from '../runtime/wire-sizes.js';
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
  readonly maxRequestBytes: number;
  readonly maxResponseBytes: number;
  readonly requestTimeoutMs: number;
}

export const DEFAULT_PERMISSION_CAPS: PermissionCaps = {
  maxReadFiles: 1000,
  maxReadBytes: 64 * 1024 * 1024,
  maxWriteFiles: 1000,
  maxWriteBytes: 64 * 1024 * 1024,
  maxRequests: 256,
  maxRequestBytes: 16 * 1024 * 1024,
  maxResponseBytes: 16 * 1024 * 1024,
  requestTimeoutMs: 30_000,
};

export interface PreparedRun {
  readonly grants: RunGrants;
  /** Bytes the sandbox may legitimately send for the grants: written files and brokered requests. */
  readonly incomingBytes: number;
  /** The longest line those messages need. */
  readonly maxLineBytes: number;
  /** Performs one brokered request; never rejects. */
  fetch(request: FetchMessage): Promise<BrokerAnswer>;
  /** Keeps the written files the grants and caps allow. */
  acceptFiles(written: { readonly files: readonly { readonly path: string; readonly bytes: Uint8Array }[]; readonly truncated: boolean }): { files: WrittenFile[]; truncated: boolean };
  /** The run is over: requests still in flight are aborted at once. */
  close(): void;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const KINDS: ReadonlySet<string> = new Set(PERMISSION_KINDS);
const JSON_ESCAPE = 6;
const base64Bytes = (bytes: number) => Math.ceil(bytes / 3) * 4;
/** A piece of a written file: its base64 and a path of up to 4096 characters. */
const FILE_LINE_BYTES = base64Bytes(FILE_CHUNK_BYTES) + JSON_ESCAPE * 4096 + 1024;

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
    maxRequestBytes: caps.maxRequestBytes,
    maxResponseBytes: caps.maxResponseBytes,
    timeoutMs: caps.requestTimeoutMs,
    ...(resolve ? { resolve: async (host: string) => (await resolve(host)).map((address) => ({ address, family: isIP(address) })) } : {}),
    onEvent: (event) => emit({ ...event, source: 'host' }),
  });
  let requests = 0;
  let busy = false;
  const ended = new AbortController();
  const netGranted = (permissions.net?.allow?.length ?? 0) > 0;
  // A request: URL and headers (each character possibly escaped as six bytes), body in base64.
  const requestLine = JSON_ESCAPE * (8192 + 128 * 8448) + base64Bytes(netGranted ? caps.maxRequestBytes : 0) + 4096;

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
    // Without a grant, a request is only answered "denied", and a handful of them is all an honest run sends.
    incomingBytes: (write.allow.length > 0 ? base64Bytes(caps.maxWriteBytes) + caps.maxWriteFiles * 8192 : 0) + (netGranted ? caps.maxRequests : 16) * requestLine,
    maxLineBytes: Math.max(FILE_LINE_BYTES, requestLine),
    async fetch(request) {
      if (ended.signal.aborted) return { ok: false, reason: 'failed', message: 'the run has ended' };
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
          signal: ended.signal,
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
    acceptFiles(written) {
      const accepted = acceptWrittenFiles(write, written.files, { maxFiles: caps.maxWriteFiles, maxBytes: caps.maxWriteBytes });
      for (const event of accepted.events) emit({ ...event, source: 'host' });
      return {
        files: accepted.files.map((file) => ({ path: file.path, size: file.bytes.length, data: base64(file.bytes) })),
        truncated: accepted.truncated || written.truncated,
      };
    },
    close() {
      ended.abort();
    },
  };
}
