/** The web page and its static assets (web/ at the package root), read once at start. */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface WebAssets {
  readonly page: string;
  readonly assets: ReadonlyMap<string, { readonly type: string; readonly body: Uint8Array }>;
}

export const WEB_DIR = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'web');

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

export function readWebAssets(dir: string = WEB_DIR): WebAssets {
  const assets = new Map<string, { type: string; body: Uint8Array }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return { page: readFileSync(join(dir, 'index.html'), 'utf8'), assets };
}
