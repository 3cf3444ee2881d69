/**
 * Finds the files a sandbox process needs: the Deno binary, the Pyodide package, the runtime
 * scripts (compiled from src/sandbox/runtime) and the Python in wasm/.
 */
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NbsError } from '../errors.js';

export interface RuntimeFiles {
  readonly denoPath: string;
  readonly pyodideDir: string;
  readonly runtimeDir: string;
  readonly wasmDir: string;
}

const require = createRequire(import.meta.url);

function denoPackageName(): string | undefined {
  const arch = process.arch === 'x64' ? 'x64' : process.arch === 'arm64' ? 'arm64' : undefined;
  if (!arch) return undefined;
  if (process.platform === 'linux') return `@deno/linux-${arch}-glibc`;
  if (process.platform === 'darwin') return `@deno/darwin-${arch}`;
  return undefined;
}

function findDeno(): string {
  const override = process.env['NBS_DENO_PATH'];
  if (override) return override;
  const packageName = denoPackageName();
  const candidates: string[] = [];
  if (packageName) {
    try {
      candidates.push(join(dirname(require.resolve(`${packageName}/package.json`)), 'deno'));
    } catch {
      // not installed for this platform; fall through to the wrapper package
    }
  }
  try {
    candidates.push(join(dirname(require.resolve('deno/package.json')), 'deno'));
  } catch {
    // no wrapper package either
  }
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new NbsError('NBS_RUNTIME_UNAVAILABLE', `no Deno binary for ${process.platform}-${process.arch}`);
  return realpathSync(found);
}

let cached: RuntimeFiles | undefined;

export function locateRuntime(): RuntimeFiles {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const packageRoot = join(here, '..', '..');
  cached = {
    denoPath: findDeno(),
    pyodideDir: realpathSync(dirname(require.resolve('pyodide/package.json'))),
    runtimeDir: realpathSync(join(here, 'runtime')),
    wasmDir: realpathSync(join(packageRoot, 'wasm')),
  };
  return cached;
}
