/**
 * Deno-style `read` and `write` path grants, and collecting the granted host files for a run.
 *
 * A run's interpreter has an in-memory file system. Host data enters it only through `read`
 * grants: before the run the host copies the granted files into the virtual tree. `write` grants
 * name virtual paths whose files the host collects after the run. Host directories are never
 * mounted.
 *
 * Rules are absolute POSIX paths. An entry covers itself and everything below it (`/data` covers
 * `/data/x`, never `/database`; `/` covers everything). Deny wins over allow whatever their depth,
 * and without allow entries nothing is allowed.
 *
 * Read side: rules are compared with real host paths. Each entry is resolved with realpath (for an
 * entry that does not exist, its longest existing ancestor), so a grant of `/data` where `/data`
 * links to `/mnt/d` grants `/mnt/d`; deny entries are also kept as written, which can only deny
 * more. Every symlink met in the walk is resolved and followed only when its target is allowed
 * and not denied. A file lands in the virtual tree at the grant entry as written plus its path
 * inside the grant: with the link above `/mnt/d/a.csv` appears as `/data/a.csv`, and a link
 * `/data/l -> /data/sub` shows the files of `sub` under both `/data/l` and `/data/sub`. Only
 * regular files and directories are copied; FIFOs, sockets and devices are never opened. Node has
 * no openat, so a host that swaps directories for links during the walk is out of scope, but the
 * size caps hold regardless.
 *
 * Write side: paths are the sandbox's own virtual paths, compared lexically after normalisation.
 */
import { constants, realpathSync, type Stats } from 'node:fs';
import { lstat, open, readdir, realpath, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { NbsError } from '../../errors.js';

export type PathDecision = 'allow' | 'deny' | 'unlisted';

export interface PathRules {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

export interface PathMatcher {
  /** Lexical: a path with NUL or a relative path is 'deny'; `..` is collapsed before matching. */
  decide(path: string): PathDecision;
}

export interface PathEvent {
  readonly kind: 'read' | 'write';
  readonly value: string;
  readonly allowed: boolean;
  readonly reason?: string;
}

export interface PathFile {
  readonly path: string;
  readonly bytes: Uint8Array;
}

export interface GrantedFile extends PathFile {
  /** Permission bits of the host file. */
  readonly mode: number;
}

export interface ReadGrants {
  readonly files: readonly GrantedFile[];
  /** Virtual directories to create, parents first; ancestors of the grant entries are not listed. */
  readonly directories: readonly string[];
  readonly events: readonly PathEvent[];
  /**
   * Virtual paths under a grant that the rules refused (a denied entry, a symlink leading out of
   * the grants), at most MAX_REFUSED: inside the run they fail as denials, not as missing files.
   */
  readonly refused: readonly string[];
}

export interface ReadCaps {
  readonly maxFiles: number;
  readonly maxBytes: number;
  /** Defaults to `maxBytes`. */
  readonly maxFileBytes?: number;
}

export interface WriteCaps {
  readonly maxFiles: number;
  readonly maxBytes: number;
}

export interface AcceptedWrites {
  readonly files: readonly PathFile[];
  readonly events: readonly PathEvent[];
  readonly truncated: boolean;
}

const MAX_PATH_LENGTH = 4096;
const MAX_RULE_ENTRIES = 1024;
const MAX_SKIP_EVENTS = 100;
const MAX_REFUSED = 1000;
const READ_CHUNK = 64 * 1024;
// Not every platform has these flags; 0 leaves them out of the open mode.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function invalid(detail: string): NbsError {
  return new NbsError('NBS_OPTION_INVALID', detail);
}

function tooLarge(detail: string): NbsError {
  return new NbsError('NBS_PERMISSION_TOO_LARGE', detail);
}

function normalise(path: string): string {
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

function covers(entry: string, path: string): boolean {
  return entry === '/' || path === entry || path.startsWith(entry + '/');
}

function readEntries(list: unknown, name: 'allow' | 'deny'): string[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw invalid(`the ${name} rules must be a list of paths`);
  if (list.length > MAX_RULE_ENTRIES) throw invalid(`the ${name} rules hold more than ${MAX_RULE_ENTRIES} entries`);
  return list.map((entry: unknown, index) => {
    const label = `${name}[${index}]`;
    if (typeof entry !== 'string' || entry.length === 0) throw invalid(`${label} must be a non-empty path`);
    if (entry.length > MAX_PATH_LENGTH) throw invalid(`${label} is longer than ${MAX_PATH_LENGTH} characters`);
    if (entry.includes('\0')) throw invalid(`${label} contains a NUL character`);
    if (!entry.startsWith('/')) throw invalid(`${label} must be an absolute path`);
    return normalise(entry);
  });
}

/** Checked and normalised rule lists; throws NBS_OPTION_INVALID (see `compilePathRules`). */
export function readRules(rules: PathRules): { allow: string[]; deny: string[] } {
  return { allow: readEntries(rules.allow, 'allow'), deny: readEntries(rules.deny, 'deny') };
}

/** The real path of `path`, or of its longest existing ancestor with the missing rest appended. */
function resolveExisting(path: string): string {
  const missing: string[] = [];
  let existing = path;
  for (;;) {
    try {
      return normalise(posix.join(realpathSync(existing), ...missing));
    } catch {
      if (existing === '/') return path;
      missing.unshift(posix.basename(existing));
      existing = posix.dirname(existing);
    }
  }
}

function matcher(allow: readonly string[], deny: readonly string[]): PathMatcher {
  return {
    decide(path: string): PathDecision {
      if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) return 'deny';
      const normal = normalise(path);
      if (deny.some((entry) => covers(entry, normal))) return 'deny';
      return allow.some((entry) => covers(entry, normal)) ? 'allow' : 'unlisted';
    },
  };
}

/**
 * Compiles path rules; throws NBS_OPTION_INVALID for an entry that is empty, relative, longer than
 * 4096 characters or contains NUL. With `resolveSymlinks` (host-side read rules) entries are
 * resolved as described at the top of this module; `decide` itself never touches the file system.
 */
export function compilePathRules(rules: PathRules, options: { readonly resolveSymlinks: boolean }): PathMatcher {
  const { allow, deny } = readRules(rules);
  if (!options.resolveSymlinks) return matcher(allow, deny);
  return matcher(
    allow.map(resolveExisting),
    deny.flatMap((entry) => [entry, resolveExisting(entry)]),
  );
}

function readCap(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalid(`${name} must be a non-negative integer`);
  return value;
}

function errorReason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' ? 'not found' : 'not readable';
}

/** Reads from offset 0 until end of file or until more than `limit` bytes are in hand. */
async function readBounded(handle: FileHandle, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  while (length <= limit) {
    const chunk = new Uint8Array(Math.min(READ_CHUNK, limit + 1 - length));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, length);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    length += bytesRead;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Entries that no other entry covers, so nested grants are walked once. */
function outermost(entries: readonly string[]): string[] {
  const kept: string[] = [];
  for (const entry of [...new Set(entries)].sort((a, b) => a.length - b.length || (a < b ? -1 : 1))) {
    if (!kept.some((outer) => covers(outer, entry))) kept.push(entry);
  }
  return kept;
}

/**
 * Copies the files the read rules grant. A missing grant entry is recorded and skipped. More than
 * `maxFiles` files, more than `maxFiles` directories (which bounds fan-out through symlinks),
 * more than `maxBytes` in total or a file over `maxFileBytes` throws NBS_PERMISSION_TOO_LARGE:
 * the run fails up front rather than seeing part of its data. Invalid rules or caps throw
 * NBS_OPTION_INVALID.
 */
export async function collectReadGrants(rules: PathRules, caps: ReadCaps): Promise<ReadGrants> {
  const maxFiles = readCap(caps.maxFiles, 'maxFiles');
  const maxBytes = readCap(caps.maxBytes, 'maxBytes');
  const maxFileBytes = readCap(caps.maxFileBytes ?? maxBytes, 'maxFileBytes');
  const rulesMatcher = compilePathRules(rules, { resolveSymlinks: true });
  const files: GrantedFile[] = [];
  const directories: string[] = [];
  const events: PathEvent[] = [];
  const refused: string[] = [];
  let totalBytes = 0;
  let skipped = 0;

  const refuse = (value: string, reason: string): void => {
    if (refused.length < MAX_REFUSED) refused.push(value);
    skip(value, reason);
  };

  const skip = (value: string, reason: string): void => {
    skipped += 1;
    if (skipped <= MAX_SKIP_EVENTS) events.push({ kind: 'read', value, allowed: false, reason });
  };

  const takeFile = async (virtualPath: string, realPath: string): Promise<void> => {
    if (files.length >= maxFiles) throw tooLarge(`more than ${maxFiles} files`);
    let handle: FileHandle;
    try {
      handle = await open(realPath, OPEN_FLAGS);
    } catch (error) {
      return skip(virtualPath, errorReason(error));
    }
    try {
      const info = await handle.stat();
      // The path was checked with lstat before; this catches a swap in between.
      if (!info.isFile()) return skip(virtualPath, 'not a regular file or directory');
      const limit = Math.min(maxFileBytes, maxBytes - totalBytes);
      if (info.size <= limit) {
        const bytes = await readBounded(handle, limit);
        if (bytes.length <= limit) {
          files.push({ path: virtualPath, bytes, mode: info.mode & 0o777 });
          totalBytes += bytes.length;
          return;
        }
      }
      throw tooLarge(maxBytes - totalBytes < maxFileBytes ? `more than ${maxBytes} bytes in total` : `a file is larger than ${maxFileBytes} bytes`);
    } finally {
      await handle.close();
    }
  };

  // `realPath` has been resolved and allowed; `ancestors` holds the real directories above it.
  const visit = async (virtualPath: string, realPath: string, ancestors: ReadonlySet<string>): Promise<void> => {
    let info: Stats;
    try {
      info = await lstat(realPath);
    } catch (error) {
      return skip(virtualPath, errorReason(error));
    }
    if (info.isFile()) return takeFile(virtualPath, realPath);
    if (!info.isDirectory()) return skip(virtualPath, 'not a regular file or directory');
    if (ancestors.has(realPath)) return skip(virtualPath, 'symlink loop');
    if (directories.length >= maxFiles) throw tooLarge(`more than ${maxFiles} directories`);
    directories.push(virtualPath);
    let names: string[];
    try {
      names = (await readdir(realPath)).sort();
    } catch (error) {
      return skip(virtualPath, errorReason(error));
    }
    const below = new Set(ancestors).add(realPath);
    for (const name of names) {
      const childVirtual = posix.join(virtualPath, name);
      let childReal = posix.join(realPath, name);
      let isLink: boolean;
      try {
        isLink = (await lstat(childReal)).isSymbolicLink();
        if (isLink) childReal = await realpath(childReal);
      } catch (error) {
        skip(childVirtual, errorReason(error));
        continue;
      }
      if (rulesMatcher.decide(childReal) === 'allow') await visit(childVirtual, childReal, below);
      else refuse(childVirtual, isLink ? 'symlink target not granted' : 'denied');
    }
  };

  for (const entry of outermost(readRules(rules).allow)) {
    let realRoot: string;
    try {
      realRoot = await realpath(entry);
    } catch (error) {
      events.push({ kind: 'read', value: entry, allowed: false, reason: errorReason(error) });
      continue;
    }
    if (rulesMatcher.decide(realRoot) !== 'allow') {
      events.push({ kind: 'read', value: entry, allowed: false, reason: 'denied' });
      refused.push(entry);
      continue;
    }
    events.push({ kind: 'read', value: entry, allowed: true });
    await visit(entry, realRoot, new Set());
  }
  if (skipped > MAX_SKIP_EVENTS) {
    events.push({ kind: 'read', value: '*', allowed: false, reason: `${skipped - MAX_SKIP_EVENTS} more skipped paths not listed` });
  }
  return { files, directories, events, refused };
}

/** The normalised virtual path, or undefined for one that is not a plain absolute path. */
function plainVirtualPath(path: unknown): string | undefined {
  if (typeof path !== 'string' || path.length > MAX_PATH_LENGTH || !path.startsWith('/') || path.includes('\0')) return undefined;
  const normal = normalise(path);
  return normal.split('/').includes('..') ? undefined : normal;
}

/** A short printable form of a path the sandbox reported, for events about rejected paths. */
function shortForm(path: unknown): string {
  if (typeof path !== 'string') return '?';
  const printable = path.replace(/[\u0000-\u001f\u007f]/g, '?');
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}

/** True when the write rules allow `path` in the run's virtual file system. */
export function checkWritablePath(rules: PathRules, path: string): boolean {
  const normal = plainVirtualPath(path);
  return normal !== undefined && compilePathRules(rules, { resolveSymlinks: false }).decide(normal) === 'allow';
}

/**
 * Keeps, in order, the written files whose normalised path the write rules allow, at that path.
 * A repeated path keeps its first file. A file that would pass `maxFiles` or `maxBytes` is dropped
 * and sets `truncated`; later smaller files may still fit. Never throws over the caps (invalid
 * rules or caps throw NBS_OPTION_INVALID).
 */
export function acceptWrittenFiles(rules: PathRules, written: readonly PathFile[], caps: WriteCaps): AcceptedWrites {
  const maxFiles = readCap(caps.maxFiles, 'maxFiles');
  const maxBytes = readCap(caps.maxBytes, 'maxBytes');
  const rulesMatcher = compilePathRules(rules, { resolveSymlinks: false });
  const files: PathFile[] = [];
  const events: PathEvent[] = [];
  const seen = new Set<string>();
  let totalBytes = 0;
  let truncated = false;
  let dropped = 0;

  const drop = (value: string, allowed: boolean, reason: string): void => {
    dropped += 1;
    if (dropped <= MAX_SKIP_EVENTS) events.push({ kind: 'write', value, allowed, reason });
  };

  for (const file of written) {
    const path = plainVirtualPath(file.path);
    if (path === undefined) drop(shortForm(file.path), false, 'not a valid path');
    else if (rulesMatcher.decide(path) !== 'allow') drop(path, false, 'not granted');
    else if (seen.has(path)) drop(path, false, 'written twice');
    else {
      seen.add(path);
      if (files.length >= maxFiles || totalBytes + file.bytes.length > maxBytes) {
        truncated = true;
        drop(path, true, 'over the output caps');
      } else {
        files.push({ path, bytes: file.bytes });
        totalBytes += file.bytes.length;
        events.push({ kind: 'write', value: path, allowed: true });
      }
    }
  }
  if (dropped > MAX_SKIP_EVENTS) {
    events.push({ kind: 'write', value: '*', allowed: false, reason: `${dropped - MAX_SKIP_EVENTS} more dropped files not listed` });
  }
  return { files, events, truncated };
}
