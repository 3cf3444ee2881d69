// Build step (`npm run build`): takes the start-up snapshot the sandbox restores. Skipped when
// the snapshot on disk already matches the installed Pyodide and runtime files; `--force`
// rebuilds it anyway (a fresh hash seed, see the README). Same as `nbsandbox snapshot`.
import { locateRuntime } from '../dist/sandbox/locate.js';
import { describeSnapshot, ensureSnapshot } from '../dist/sandbox/snapshot.js';

console.log(describeSnapshot(await ensureSnapshot(locateRuntime(), { force: process.argv.includes('--force') })));
