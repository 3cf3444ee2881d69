/** Recognises marimo notebooks among .py files without importing or running them. */
const MARIMO_IMPORT = /^\s*import\s+marimo\b/m;
const MARIMO_APP = /\bmarimo\.App\s*\(/;

/** A .py file is a marimo notebook when it imports marimo and creates a marimo.App. */
export function isMarimoSource(source: string): boolean {
  return MARIMO_IMPORT.test(source) && MARIMO_APP.test(source);
}
