/**
 * Text for a terminal from untrusted sources (finding messages, run output, file names, error
 * messages): control characters are shown escaped instead of being interpreted, so output can
 * neither move the cursor, rewrite lines, set the window title nor write the clipboard (OSC 52),
 * and bidirectional overrides cannot reorder what is shown. JSON output is never passed here.
 */

// C0 controls except tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates and
// marks, line/paragraph separators, lone surrogates.
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function escaped(char: string): string {
  const code = char.charCodeAt(0);
  if (char === '\r') return '\\r';
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `text` with every unsafe character written as an escape (`\x1b`, `\u202e`); CRLF stays a line end. */
export function printable(text: string): string {
  return text.replace(/\r\n/g, '\n').replace(UNSAFE, escaped);
}

/** One line of text: newlines and tabs escaped too. */
export function printableLine(text: string): string {
  return printable(text).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}
