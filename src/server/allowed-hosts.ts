/**
 * Which `Host` a request may name. A page on another site can make a browser talk to a server
 * on 127.0.0.1 by pointing its own name at that address (DNS rebinding); the browser then
 * sends that name as `Host`. Refusing names the operator did not list stops it, as Jupyter and
 * development servers do.
 */
import { isIP } from 'node:net';

export interface AllowedHosts {
  /** Whether a request with this `Host` header (or URL host) may be served. */
  allows(host: string | undefined): boolean;
}

/** `name` or `name:port`, lower-cased, brackets and a trailing dot removed; null when malformed. */
function parseHost(value: string): { name: string; port: number | null } | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!match) return null;
  let name = (match[1] ?? '').toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, -1);
  if (name.endsWith('.')) name = name.slice(0, -1);
  return { name, port: match[2] === undefined ? null : Number(match[2]) };
}

/**
 * The names always served (`localhost`, `127.0.0.1`, `::1` and the address the server listens
 * on) on the server's own port, plus the operator's entries (`name` for any port, `name:port`,
 * or `*` for any host, behind a proxy that checks `Host` itself).
 */
export function allowedHosts(options: { readonly listenHost: string; readonly port: () => number | undefined; readonly extra: readonly string[] }): AllowedHosts {
  if (options.extra.includes('*')) return { allows: () => true };
  const local = new Set(['localhost', '127.0.0.1', '::1']);
  const listen = parseHost(isIP(options.listenHost) === 6 ? `[${options.listenHost}]` : options.listenHost)?.name;
  if (listen && listen !== '0.0.0.0' && listen !== '::') local.add(listen);
  const extra = options.extra.map(parseHost).filter((entry) => entry !== null);
  return {
    allows(host) {
      if (host === undefined) return false;
      const given = parseHost(host);
      if (!given) return false;
      if (local.has(given.name) && (given.port === null || given.port === options.port())) return true;
      return extra.some((entry) => entry.name === given.name && (entry.port === null || entry.port === given.port));
    },
  };
}
