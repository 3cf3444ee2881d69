/**
 * How deeply JSON text nests, found by one linear scan before anything parses it. Parsers and
 * validators that recurse (and JSON.stringify) overflow the stack on a few thousand levels;
 * refusing such text up front turns a crash into a clear answer.
 */

/** Deepest nesting accepted in notebooks and request bodies; real notebooks stay far below it. */
export const MAX_JSON_DEPTH = 256;

/** True when arrays and objects in `text` nest deeper than `maxDepth` (strings are skipped). */
export function jsonNestsDeeper(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index += 1; // backslash: skip the escaped character
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) inString = true;
    else if (code === 0x5b || code === 0x7b) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (code === 0x5d || code === 0x7d) depth -= 1;
  }
  return false;
}
