/**
 * The `read` and `write` permissions: Deno-style path lists with prefix semantics (`/data`
 * covers `/data/x`, never `/database`) where deny wins. Read grants are copied from the host
 * into the run's virtual file system; files under write grants are collected after the run.
 * Host directories are never mounted.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';
import { NbsError } from '../../errors.js';
import type { PermissionKind, PermissionList } from '../types.js';

export interface PathLists {
  readonly allow: string[];
  readonly deny: string[];
}

export interface PathEvent {
  readonly kind: PermissionKind;
  readonly value: string;
  readonly allowed: boolean;
  readonly reason?: string;
}

const MAX_ENTRIES = 256;
const MAX_DENIAL_EVENTS = 100;
const MAX_DEPTH = 64;

function normalEntry(entry: unknown, kind: string): string {
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > 4096 || entry.includes('\0') || !entry.startsWith('/')) {
    throw new NbsError('NBS_OPTION_INVALID', `${kind} entries must be absolute paths`);
  }
  const normal = posix.normalize(entry);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

/** Checks and normalises a path permission list; throws NBS_OPTION_INVALID. */
export function pathLists(list: PermissionList | undefined, kind: 'read' | 'write'): PathLists {
  const allow = list?.allow ?? [];
  const deny = list?.deny ?? [];
  if (allow.length + deny.length > MAX_ENTRIES) throw new NbsError('NBS_OPTION_INVALID', `${kind} lists at most ${MAX_ENTRIES} entries`);
  return { allow: allow.map((entry) => normalEntry(entry, kind)), deny: deny.map((entry) => normalEntry(entry, kind)) };
}

/** True when `path` is `prefix` or lies below it. */
export function isUnder(path: string, prefix: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** 'allow' only for a normal absolute path under an allow entry and under no deny entry. */
export function decidePath(lists: PathLists, path: string): 'allow' | 'deny' | 'unlisted' {
  if (path.includes('\0') || !path.startsWith('/')) return 'deny';
  const normal = posix.normalize(path);
  if (lists.deny.some((prefix) => isUnder(normal, prefix))) return 'deny';
  return lists.allow.some((prefix) => isUnder(normal, prefix)) ? 'allow' : 'unlisted';
}

function realOrNull(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

export interface ReadCaps {
  readonly maxFiles: number;
  readonly maxBytes: number;
}

export interface CollectedReads {
  readonly files: { path: string; bytes: Uint8Array }[];
  readonly directories: string[];
  readonly events: PathEvent[];
}

function tooLarge(): NbsError {
  return new NbsError('NBS_PERMISSION_TOO_LARGE');
}

/** Reads at most `limit + 1` bytes through a descriptor opened without following symlinks. */
function readBounded(path: string, limit: number): Uint8Array {
  const descriptor = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    if (!fstatSync(descriptor).isFile()) throw new Error('not a regular file');
    const buffer = Buffer.alloc(Math.min(limit + 1, fstatSync(descriptor).size + 1));
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(descriptor, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    if (length > limit) throw tooLarge();
    return buffer.subarray(0, length);
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Copies the granted host files. A symlink met on the way is followed only when its real target
 * is itself granted; the file then appears at the symlink's path. Anything that is not a regular
 * file or directory (FIFOs, sockets, devices) is skipped unopened. Over the caps, the run fails
 * up front with NBS_PERMISSION_TOO_LARGE rather than seeing part of its data.
 */
export function collectReadGrants(lists: PathLists, caps: ReadCaps): CollectedReads {
  const files: { path: string; bytes: Uint8Array }[] = [];
  const directories: string[] = [];
  const events: PathEvent[] = [];
  const visitedDirectories = new Set<string>();
  const placed = new Set<string>();
  let bytes = 0;
  let denials = 0;
  // A real path is granted when some allow entry (or its real location) covers it and no deny
  // entry (or its real location) does.
  const real = (entries: readonly string[]) => entries.flatMap((entry) => [entry, realOrNull(entry) ?? entry]);
  const realLists: PathLists = { allow: real(lists.allow), deny: real(lists.deny) };
  const deny = (value: string, reason: string) => {
    denials += 1;
    if (denials <= MAX_DENIAL_EVENTS) events.push({ kind: 'read', value, allowed: false, reason });
  };

  const visit = (virtualPath: string, depth: number): void => {
    if (decidePath(lists, virtualPath) !== 'allow') return deny(virtualPath, 'denied by the read permission');
    const target = realOrNull(virtualPath);
    if (target === null) return;
    if (target !== virtualPath && decidePath(realLists, target) !== 'allow') return deny(virtualPath, 'a symlink to a path that is not granted');
    const stat = lstatSync(target);
    if (stat.isDirectory()) {
      if (visitedDirectories.has(target) || depth > MAX_DEPTH) return;
      visitedDirectories.add(target);
      directories.push(virtualPath);
      for (const name of readdirSync(target).sort()) visit(posix.join(virtualPath, name), depth + 1);
    } else if (stat.isFile()) {
      if (placed.has(virtualPath)) return;
      if (files.length + 1 > caps.maxFiles || bytes + stat.size > caps.maxBytes) throw tooLarge();
      const content = readBounded(target, caps.maxBytes - bytes);
      bytes += content.length;
      placed.add(virtualPath);
      files.push({ path: virtualPath, bytes: content });
    }
  };

  for (const root of lists.allow) {
    if (realOrNull(root) === null) {
      events.push({ kind: 'read', value: root, allowed: true, reason: 'granted path does not exist' });
      continue;
    }
    events.push({ kind: 'read', value: root, allowed: true });
    visit(root, 0);
  }
  if (denials > MAX_DENIAL_EVENTS) events.push({ kind: 'read', value: `${denials - MAX_DENIAL_EVENTS} more`, allowed: false, reason: 'further denials not listed' });
  return { files, directories, events };
}

/** Keeps the files a run wrote that its write permission covers, within the caps; never throws. */
export function acceptWrittenFiles(
  lists: PathLists,
  written: readonly { path: string; bytes: Uint8Array }[],
  caps: ReadCaps,
): { files: { path: string; bytes: Uint8Array }[]; truncated: boolean; events: PathEvent[] } {
  const files: { path: string; bytes: Uint8Array }[] = [];
  const events: PathEvent[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  let truncated = false;
  for (const file of written) {
    const normal = posix.normalize(file.path);
    if (normal !== file.path || seen.has(normal) || decidePath(lists, normal) !== 'allow') {
      if (events.length < MAX_DENIAL_EVENTS) events.push({ kind: 'write', value: file.path.slice(0, 512), allowed: false, reason: 'not covered by the write permission' });
      continue;
    }
    if (files.length + 1 > caps.maxFiles || bytes + file.bytes.length > caps.maxBytes) {
      truncated = true;
      continue;
    }
    seen.add(normal);
    bytes += file.bytes.length;
    files.push({ path: normal, bytes: file.bytes });
    events.push({ kind: 'write', value: normal, allowed: true });
  }
  return { files, truncated, events };
}
