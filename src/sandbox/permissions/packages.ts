/**
 * Packages beyond the standard library, served from an operator's Pyodide package directory
 * (a `pyodide-lock.json` beside its wheels, e.g. an unpacked Pyodide release). A run's `import`
 * allow list picks the packages whose import names it grants; their dependencies come with them,
 * and so do the dependencies' import names. Nothing is ever downloaded, and every wheel must
 * match the sha256 its lock file records (checked here, on the host, before a run uses it).
 */
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { NbsError } from '../../errors.js';

const MAX_LOCK_BYTES = 32 * 1024 * 1024;

const lockSchema = v.object({
  packages: v.record(
    v.string(),
    v.object({
      name: v.string(),
      file_name: v.pipe(v.string(), v.regex(/^[\w.+-]+\.(?:whl|zip|tar)$/)),
      sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
      imports: v.optional(v.array(v.string()), []),
      depends: v.optional(v.array(v.string()), []),
    }),
  ),
});

export interface PackageSelection {
  /** Lock-file package names to install, dependencies included. */
  readonly packages: string[];
  /** Every import name those packages provide. */
  readonly imports: string[];
}

export interface PackageIndex {
  /** The real path of the directory. */
  readonly dir: string;
  select(allowedImports: readonly string[]): PackageSelection;
}

const normalName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** Reads the directory's lock file; throws NBS_OPTION_INVALID when it is missing or malformed. */
export function readPackageIndex(dir: string): PackageIndex {
  let real: string;
  let lock: v.InferOutput<typeof lockSchema>;
  try {
    real = realpathSync(dir);
    const lockPath = join(real, 'pyodide-lock.json');
    if (statSync(lockPath).size > MAX_LOCK_BYTES) throw new Error('too large');
    lock = v.parse(lockSchema, JSON.parse(readFileSync(lockPath, 'utf8')));
  } catch {
    throw new NbsError('NBS_OPTION_INVALID', 'packageDir must be a directory with a valid pyodide-lock.json');
  }
  const byName = new Map(Object.values(lock.packages).map((entry) => [normalName(entry.name), entry]));
  const byImport = new Map<string, string[]>();
  for (const entry of Object.values(lock.packages)) {
    for (const name of entry.imports) byImport.set(name, [...(byImport.get(name) ?? []), normalName(entry.name)]);
  }
  const verified = new Map<string, string>();
  const verify = (path: string, sha256: string): void => {
    let stamp: string;
    try {
      const info = statSync(path);
      stamp = `${info.size}:${info.mtimeMs}:${sha256}`;
      if (verified.get(path) === stamp) return;
      if (createHash('sha256').update(readFileSync(path)).digest('hex') !== sha256) throw new Error('mismatch');
    } catch {
      throw new NbsError('NBS_PACKAGE_INVALID');
    }
    verified.set(path, stamp);
  };
  return {
    dir: real,
    select(allowedImports) {
      const chosen = new Set<string>();
      const pending = allowedImports.flatMap((module) => byImport.get(module.split('.')[0] ?? '') ?? []);
      while (pending.length > 0) {
        const name = pending.pop() as string;
        const entry = byName.get(name);
        if (!entry || chosen.has(name)) continue;
        chosen.add(name);
        pending.push(...entry.depends.map(normalName));
      }
      const entries = [...chosen].map((name) => byName.get(name)).filter((entry) => entry !== undefined);
      for (const entry of entries) verify(join(real, entry.file_name), entry.sha256);
      return { packages: entries.map((entry) => entry.name).sort(), imports: [...new Set(entries.flatMap((entry) => entry.imports))].sort() };
    },
  };
}
