// Build step (`npm run build`): takes the start-up snapshot the sandbox restores. Skipped when
// the snapshot on disk already matches the installed Pyodide and runtime files.
import { locateRuntime } from '../dist/sandbox/locate.js';
import { buildSnapshot, verifySnapshot } from '../dist/sandbox/snapshot.js';

const files = locateRuntime();
const current = verifySnapshot(files);
if (current.usable && !process.argv.includes('--force')) {
  console.log(`snapshot up to date (${(current.manifest.bytes / 2 ** 20).toFixed(1)} MiB, Pyodide ${current.manifest.pyodide})`);
} else {
  const manifest = await buildSnapshot(files);
  console.log(`snapshot built in ${manifest.buildMs} ms: ${(manifest.bytes / 2 ** 20).toFixed(1)} MiB, Pyodide ${manifest.pyodide}`);
}
