/**
 * The `net` permission and the host-side broker that performs a run's HTTP requests.
 *
 * A request is allowed when its host (and port) is listed and not denied. The broker then
 * resolves the name itself and refuses private, loopback, link-local, multicast, metadata and
 * other non-public addresses unless that exact address is listed, connects to the address it
 * checked (so DNS cannot change between check and connect), and checks every redirect hop the
 * same way. Responses are capped in size and time.
 */
import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { NbsError } from '../../errors.js';
import type { PermissionList } from '../types.js';

interface HostRule {
  /** Lower-case host name or canonical IP; `*.example.com` is stored as `.example.com`. */
  readonly host: string;
  readonly wildcard: boolean;
  readonly port: number | null;
}

export interface NetRules {
  readonly allow: readonly HostRule[];
  readonly deny: readonly HostRule[];
  /** IP addresses listed in allow: only these non-public addresses may be reached. */
  readonly listedAddresses: ReadonlySet<string>;
}

const HOST_ENTRY = /^(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*\.?|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:.]+\])(?::(\d{1,5}))?$/i;

function canonicalAddress(address: string): string {
  const parsed = ipaddr.parse(address);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()
    ? (parsed as ipaddr.IPv6).toIPv4Address().toString()
    : parsed.toString();
}

function parseEntry(entry: unknown): HostRule {
  const match = typeof entry === 'string' && entry.length <= 300 ? HOST_ENTRY.exec(entry) : null;
  const name = match?.[2];
  if (!match || name === undefined) throw new NbsError('NBS_OPTION_INVALID', 'net entries must be host, host:port, *.domain or an IP address');
  const port = match[3] === undefined ? null : Number(match[3]);
  if (port !== null && (port < 1 || port > 65535)) throw new NbsError('NBS_OPTION_INVALID', 'net entries must have a port from 1 to 65535');
  const bare = name.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  const literal = isIP(bare) !== 0;
  if (literal && match[1]) throw new NbsError('NBS_OPTION_INVALID', 'a net wildcard takes a domain, not an address');
  return { host: literal ? canonicalAddress(bare) : bare, wildcard: Boolean(match[1]), port };
}

/** Checks a net permission list; throws NBS_OPTION_INVALID for an entry that is not a host. */
export function netRules(list: PermissionList | undefined): NetRules {
  const allow = (list?.allow ?? []).map(parseEntry);
  const deny = (list?.deny ?? []).map(parseEntry);
  if (allow.length + deny.length > 256) throw new NbsError('NBS_OPTION_INVALID', 'net lists at most 256 entries');
  return { allow, deny, listedAddresses: new Set(allow.filter((rule) => isIP(rule.host) !== 0).map((rule) => rule.host)) };
}

function matches(rule: HostRule, host: string, port: number): boolean {
  if (rule.port !== null && rule.port !== port) return false;
  return rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host;
}

/** Deny wins; a host no allow entry names is unlisted, which is a denial too. */
export function decideHost(rules: NetRules, host: string, port: number): 'allow' | 'deny' | 'unlisted' {
  if (rules.deny.some((rule) => matches(rule, host, port))) return 'deny';
  return rules.allow.some((rule) => matches(rule, host, port)) ? 'allow' : 'unlisted';
}

/** Only plain public unicast addresses; IPv4-mapped IPv6 is judged as its IPv4 address. */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  // Global unicast IPv6 lives in 2000::/3; ipaddr.js calls e.g. the old IPv4-compatible ::7f00:1 unicast too.
  if (parsed.kind() === 'ipv6' && !(parsed as ipaddr.IPv6).match(ipaddr.IPv6.parse('2000::'), 3)) return false;
  return parsed.range() === 'unicast';
}

export interface BrokerRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

export interface BrokerResponse {
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
}

export type BrokerOutcome =
  | { readonly ok: true; readonly response: BrokerResponse }
  | { readonly ok: false; readonly reason: 'denied' | 'too-large' | 'timeout' | 'failed'; readonly message: string };

export interface NetEvent {
  readonly kind: 'net';
  readonly value: string;
  readonly allowed: boolean;
  readonly reason?: string;
}

export interface BrokerOptions {
  readonly rules: NetRules;
  readonly maxResponseBytes: number;
  /** For the whole exchange, redirects included. */
  readonly timeoutMs: number;
  readonly maxRedirects?: number;
  /** Name resolution; tests inject one so that no traffic leaves the machine. */
  readonly resolve?: (host: string) => Promise<readonly string[]>;
  readonly onEvent?: (event: NetEvent) => void;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const DROPPED_HEADERS = new Set([
  'host', 'connection', 'keep-alive', 'proxy-authorization', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te',
  'trailer', 'expect', 'content-length', 'accept-encoding',
]);
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie', 'proxy-authorization']);

async function systemResolve(host: string): Promise<readonly string[]> {
  const answers = await lookup(host, { all: true, verbatim: true });
  return answers.map((answer) => answer.address);
}

class Refused extends Error {
  constructor(
    readonly reason: 'denied' | 'too-large' | 'timeout' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

/** Creates the broker's fetch: plain-data outcomes, never a rejection. */
export function createBroker(options: BrokerOptions): (request: BrokerRequest) => Promise<BrokerOutcome> {
  const resolve = options.resolve ?? systemResolve;
  const maxRedirects = options.maxRedirects ?? 5;

  const checkTarget = async (url: URL): Promise<{ address: string; host: string; port: number }> => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Refused('denied', `net access refused: only http and https URLs`);
    if (url.username || url.password) throw new Refused('denied', 'net access refused: URLs with credentials');
    const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const literal = isIP(host) !== 0;
    const name = literal ? canonicalAddress(host) : host;
    const value = `${name}:${port}`;
    const decision = decideHost(options.rules, name, port);
    if (decision !== 'allow') {
      options.onEvent?.({ kind: 'net', value, allowed: false, reason: decision === 'deny' ? 'denied by the net permission' : 'not listed' });
      throw new Refused('denied', `Requires net access to "${value}", run again with --allow-net=${name}`);
    }
    let addresses: readonly string[];
    try {
      addresses = literal ? [name] : await resolve(host);
    } catch {
      throw new Refused('failed', `cannot resolve "${host}"`);
    }
    if (addresses.length === 0) throw new Refused('failed', `cannot resolve "${host}"`);
    // Every answer must pass, so a name cannot mix a public address with a private one.
    for (const address of addresses) {
      if (!isPublicAddress(address) && !(ipaddr.isValid(address) && options.rules.listedAddresses.has(canonicalAddress(address)))) {
        options.onEvent?.({ kind: 'net', value, allowed: false, reason: 'non-public address' });
        throw new Refused('denied', `net access to "${value}" refused: it resolves to a non-public address (list the address itself to allow it)`);
      }
    }
    options.onEvent?.({ kind: 'net', value, allowed: true });
    return { address: addresses[0] as string, host, port };
  };

  const exchange = (url: URL, target: { address: string; host: string; port: number }, method: string, headers: [string, string][], body: Uint8Array, signal: AbortSignal) =>
    new Promise<{ status: number; statusText: string; headers: [string, string][]; body: Uint8Array }>((resolvePromise, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const family = isIP(target.address);
      const outgoing = send(
        {
          protocol: url.protocol,
          host: target.host,
          port: target.port,
          method,
          path: `${url.pathname}${url.search}`,
          headers: [...headers.flat(), 'host', url.host, 'accept-encoding', 'identity', 'content-length', String(body.length), 'connection', 'close'],
          servername: isIP(target.host) ? undefined : target.host,
          agent: false,
          signal,
          // The address checked above is the one connected to.
          lookup: (_hostname, lookupOptions, callback) => {
            if ((lookupOptions as { all?: boolean }).all) (callback as (error: null, addresses: { address: string; family: number }[]) => void)(null, [{ address: target.address, family }]);
            else callback(null, target.address, family);
          },
        },
        (incoming: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          incoming.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > options.maxResponseBytes) {
              incoming.destroy();
              reject(new Refused('too-large', `the response is larger than ${options.maxResponseBytes} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          incoming.on('end', () => {
            const responseHeaders: [string, string][] = [];
            for (let index = 0; index + 1 < incoming.rawHeaders.length; index += 2) {
              responseHeaders.push([incoming.rawHeaders[index] as string, incoming.rawHeaders[index + 1] as string]);
            }
            resolvePromise({ status: incoming.statusCode ?? 0, statusText: incoming.statusMessage ?? '', headers: responseHeaders, body: Buffer.concat(chunks) });
          });
          incoming.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });

  return async (request) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), options.timeoutMs);
    try {
      let method = request.method.toUpperCase();
      if (!METHODS.has(method)) throw new Refused('denied', `net access refused: method ${method.slice(0, 16)}`);
      let url: URL;
      try {
        url = new URL(request.url);
      } catch {
        throw new Refused('failed', 'the URL is not valid');
      }
      let headers = request.headers
        .filter(([name]) => !DROPPED_HEADERS.has(name.toLowerCase()) && !name.toLowerCase().startsWith('proxy-'))
        .map(([name, value]) => [name, value] as [string, string]);
      let body = request.body;
      for (let hop = 0; ; hop += 1) {
        const target = await checkTarget(url);
        const response = await exchange(url, target, method, headers, body, controller.signal);
        const location = response.headers.find(([name]) => name.toLowerCase() === 'location')?.[1];
        if (![301, 302, 303, 307, 308].includes(response.status) || location === undefined) {
          return { ok: true, response: { ...response, url: url.href } };
        }
        if (hop >= maxRedirects) throw new Refused('failed', `more than ${maxRedirects} redirects`);
        const next = new URL(location, url);
        if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
          method = method === 'HEAD' ? 'HEAD' : 'GET';
          body = new Uint8Array();
          headers = headers.filter(([name]) => !['content-type'].includes(name.toLowerCase()));
        }
        if (next.origin !== url.origin) headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
        url = next;
      }
    } catch (error) {
      if (error instanceof Refused) return { ok: false, reason: error.reason, message: error.message };
      if (controller.signal.aborted) return { ok: false, reason: 'timeout', message: `no answer within ${options.timeoutMs} ms` };
      return { ok: false, reason: 'failed', message: 'the request failed' };
    } finally {
      clearTimeout(timer);
    }
  };
}
