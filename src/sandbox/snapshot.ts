/**
 * The start-up snapshot: a Pyodide memory image taken after the runtime's own Python is loaded
 * and hardened, so a sandbox process restores it instead of starting CPython from scratch.
 *
 * A snapshot is only valid for the exact Pyodide build and runtime files it was taken from. Its
 * manifest records a fingerprint of those inputs and the image's own hash; both are checked
 * before any process restores it, and anything that does not match is ignored (processes then
 * start the slow way) rather than trusted.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import type { RuntimeFiles } from './locate.js';
import { SandboxProcess } from './process.js';

const MANIFEST_FORMAT = 1;

/** Files whose content ends up in the snapshot: the Pyodide build and everything run before it is taken. */
const PYODIDE_INPUTS = ['package.json', 'pyodide.asm.wasm', 'pyodide.asm.mjs', 'pyodide.mjs', 'python_stdlib.zip'];
const WASM_INPUTS = ['runner.py', 'checker/magics.py', 'event_loop.py', 'permissions.py', 'harden.py'];
const RUNTIME_INPUTS = ['interpreter.js', 'main.js', 'ring.js', 'wire-sizes.js'];

const manifestSchema = v.strictObject({
  format: v.literal(MANIFEST_FORMAT),
  pyodide: v.string(),
  inputs: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  bytes: v.pipe(v.number(), v.integer(), v.minValue(1)),
  builtAt: v.string(),
  buildMs: v.number(),
});

export type SnapshotManifest = v.InferOutput<typeof manifestSchema>;

export interface SnapshotPaths {
  readonly image: string;
  readonly manifest: string;
}

/** Where the build step puts the snapshot: `wasm/build/` of this installation. */
export function defaultSnapshotPaths(files: RuntimeFiles): SnapshotPaths {
  const directory = join(files.wasmDir, 'build');
  return { image: join(directory, 'snapshot.bin'), manifest: join(directory, 'snapshot.json') };
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** One hash over every input of the snapshot, each named, so a change to any of them shows. */
export function snapshotInputsFingerprint(files: RuntimeFiles): string {
  const hash = createHash('sha256');
  const add = (directory: string, names: readonly string[], label: string) => {
    for (const name of names) hash.update(`${label}/${name}\0${sha256File(join(directory, name))}\n`);
  };
  add(files.pyodideDir, PYODIDE_INPUTS, 'pyodide');
  add(files.wasmDir, WASM_INPUTS, 'wasm');
  add(files.runtimeDir, RUNTIME_INPUTS, 'runtime');
  return hash.digest('hex');
}

export type SnapshotCheck =
  | { readonly usable: true; readonly path: string; readonly manifest: SnapshotManifest }
  | { readonly usable: false; readonly reason: string };

/** Checks that the snapshot exists, was built from these very inputs and is intact. */
export function verifySnapshot(files: RuntimeFiles, paths: SnapshotPaths = defaultSnapshotPaths(files)): SnapshotCheck {
  let manifest: SnapshotManifest;
  try {
    const parsed = v.safeParse(manifestSchema, JSON.parse(readFileSync(paths.manifest, 'utf8')));
    if (!parsed.success) return { usable: false, reason: 'the snapshot manifest is not valid' };
    manifest = parsed.output;
  } catch {
    return { usable: false, reason: 'no snapshot has been built (run `npm run build`)' };
  }
  if (manifest.inputs !== snapshotInputsFingerprint(files)) {
    return { usable: false, reason: 'the snapshot was built from another Pyodide or runtime version' };
  }
  try {
    if (statSync(paths.image).size !== manifest.bytes || sha256File(paths.image) !== manifest.sha256) {
      return { usable: false, reason: 'the snapshot does not match its manifest' };
    }
  } catch {
    return { usable: false, reason: 'the snapshot image is missing' };
  }
  return { usable: true, path: paths.image, manifest };
}

/**
 * Builds the snapshot in a sandbox process (the same runtime that will restore it; it may write
 * only the new image) and writes it with its manifest, replacing any older one atomically.
 */
export async function buildSnapshot(files: RuntimeFiles, paths: SnapshotPaths = defaultSnapshotPaths(files)): Promise<SnapshotManifest> {
  const directory = join(paths.image, '..');
  mkdirSync(directory, { recursive: true });
  const partial = `${paths.image}.${process.pid}.partial`;
  const builder = new SandboxProcess({ files, networkNamespace: null, maxMessageBytes: 64 * 1024, snapshot: { kind: 'make', path: partial } });
  try {
    const built = await new Promise<{ pyodide: string; buildMs: number }>((resolve, reject) => {
      builder.onMessage((message) => {
        if (message.t === 'snapshot') resolve({ pyodide: message.pyodide, buildMs: message.buildMs });
        else if (message.t === 'fatal') reject(new NbsError('NBS_SANDBOX_START_FAILED', 'the snapshot could not be built', { cause: new Error(message.message) }));
      });
      void builder.exited.then(() => reject(new NbsError('NBS_SANDBOX_START_FAILED', 'the snapshot builder exited early')));
    });
    const manifest: SnapshotManifest = {
      format: MANIFEST_FORMAT,
      pyodide: built.pyodide,
      inputs: snapshotInputsFingerprint(files),
      sha256: sha256File(partial),
      bytes: statSync(partial).size,
      builtAt: new Date().toISOString(),
      buildMs: built.buildMs,
    };
    renameSync(partial, paths.image);
    writeFileSync(`${paths.manifest}.partial`, JSON.stringify(manifest, null, 2) + '\n');
    renameSync(`${paths.manifest}.partial`, paths.manifest);
    return manifest;
  } finally {
    await builder.kill();
    rmSync(partial, { force: true });
  }
}

/** Builds the snapshot unless the one on disk already matches this installation (or `force`). */
export async function ensureSnapshot(files: RuntimeFiles, options: { force?: boolean } = {}): Promise<{ built: boolean; manifest: SnapshotManifest }> {
  const current = verifySnapshot(files);
  if (current.usable && !options.force) return { built: false, manifest: current.manifest };
  return { built: true, manifest: await buildSnapshot(files) };
}

/** One line for people: what was built or found. */
export function describeSnapshot(result: { built: boolean; manifest: SnapshotManifest }): string {
  const size = `${(result.manifest.bytes / 2 ** 20).toFixed(1)} MiB, Pyodide ${result.manifest.pyodide}`;
  return result.built ? `snapshot built in ${result.manifest.buildMs} ms: ${size}` : `snapshot up to date (${size})`;
}
