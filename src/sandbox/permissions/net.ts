/**
 * Network access for untrusted code: host rules, address classification and a guarded fetcher.
 *
 * `compileNetRules` turns Deno-style allow/deny lists (`host`, `host:port`, `*.domain[:port]`,
 * `1.2.3.4[:port]`, `[::1][:port]`) into a matcher where deny wins and anything not allowed is
 * unlisted. `createGuardedFetcher` performs one HTTP exchange for a caller that must not reach
 * more than the rules allow. For every hop (the first request and each redirect) it:
 *
 * - accepts only http/https URLs without credentials and a small set of methods;
 * - checks the host and port against the rules;
 * - resolves the name itself and refuses the hop if any answer is not a public address, unless
 *   that exact address is in `allowAddresses` for that port (so a name cannot mix a public and a
 *   private answer, nor reach other ports of a listed private address);
 * - connects to the addresses it checked (a `lookup` that returns them), so DNS cannot change
 *   between check and connect, while Host and TLS SNI/verification still use the name.
 *
 * Responses are not decompressed: the request asks for `accept-encoding: identity` and the bytes
 * are passed through as received, so the size cap applies to what actually crosses the wire and a
 * compression bomb cannot expand on the host. Proxy environment variables are never honoured.
 * Outcomes are plain data; the fetcher never rejects.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { NbsError } from '../../errors.js';

export type NetDecision = 'allow' | 'deny' | 'unlisted';

/** A non-public address that may be reached, on one port or (null) any. */
export interface ListedAddress {
  readonly address: string;
  readonly port: number | null;
}

export interface NetRules {
  /** `hostname` as in a URL (case, trailing dot, brackets, IDN and IPv4 forms are normalised). */
  decide(hostname: string, port: number): NetDecision;
  /**
   * IP addresses named by allow entries, canonical, each with the port its entry names (null: any
   * port): the non-public endpoints a caller may pass on as `allowAddresses`.
   */
  readonly listedAddresses: readonly ListedAddress[];
}

export interface NetRuleLists {
  readonly allow?: readonly string[];
  readonly deny?: readonly string[];
}

interface HostRule {
  /** Normalised host name or canonical IP; for a wildcard, the domain below which it matches. */
  readonly host: string;
  readonly wildcard: boolean;
  readonly port: number | null;
}

const MAX_RULE_ENTRIES = 1024;
const LABELS = /^[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*$/;

/** Shows at most a short, printable part of untrusted input. */
function shown(value: string, max = 40): string {
  const printable = value.slice(0, max).replace(/[^\x20-\x7e]|["\\]/g, '?');
  return `"${printable}${value.length > max ? '...' : ''}"`;
}

/** IPv4-mapped IPv6 becomes its IPv4 address, so both spellings of one endpoint compare equal. */
function canonicalAddress(address: string): string {
  const parsed = ipaddr.parse(address);
  return parsed instanceof ipaddr.IPv6 && parsed.isIPv4MappedAddress() ? parsed.toIPv4Address().toString() : parsed.toString();
}

/** Normalises a host the way a WHATWG URL does; null when it is not a host name or IP address. */
function normalizeHost(input: string): string | null {
  let host = input;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':')) return !host.includes('%') && isIP(host) === 6 ? canonicalAddress(host) : null;
  if (host.length === 0 || host.length > 300 || /[\s/\\?#@%[\]]/.test(host)) return null;
  let parsed: string;
  try {
    parsed = new URL(`http://${host}/`).hostname;
  } catch {
    return null;
  }
  if (parsed.endsWith('.')) parsed = parsed.slice(0, -1);
  if (isIP(parsed) === 4) return canonicalAddress(parsed);
  return parsed.length <= 253 && LABELS.test(parsed) ? parsed : null;
}

function parseEntry(entry: unknown): HostRule {
  if (typeof entry !== 'string') throw new NbsError('NBS_OPTION_INVALID', 'net entries must be strings');
  const invalid = (why: string) => new NbsError('NBS_OPTION_INVALID', `net entry ${shown(entry)} ${why}`);
  if (entry.length > 300) throw invalid('is too long');
  const wildcard = entry.startsWith('*.');
  const rest = wildcard ? entry.slice(2) : entry;
  let hostPart = rest;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    const after = close < 0 ? '' : rest.slice(close + 1);
    if (close < 0 || (after !== '' && !after.startsWith(':'))) throw invalid('is not a bracketed IPv6 address');
    hostPart = rest.slice(0, close + 1);
    if (after !== '') portText = after.slice(1);
  } else {
    const colon = rest.indexOf(':');
    if (colon >= 0) {
      hostPart = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    }
  }
  let port: number | null = null;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (port < 1 || port > 65535) throw invalid('needs a port from 1 to 65535');
  }
  const host = normalizeHost(hostPart);
  if (host === null) throw invalid('is not host, host:port, *.domain or an IP address');
  if (wildcard && isIP(host) !== 0) throw invalid('is a wildcard over an IP address');
  return { host, wildcard, port };
}

function ruleMatches(rule: HostRule, host: string, port: number): boolean {
  if (rule.port !== null && rule.port !== port) return false;
  if (!rule.wildcard) return host === rule.host;
  return isIP(host) === 0 && host.endsWith(`.${rule.host}`);
}

/** Compiles allow/deny lists; throws NBS_OPTION_INVALID for an entry that is not a host. */
export function compileNetRules(lists: NetRuleLists): NetRules {
  const read = (list: readonly string[] | undefined): HostRule[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new NbsError('NBS_OPTION_INVALID', 'net allow and deny must be lists');
    return list.map(parseEntry);
  };
  if ((lists.allow?.length ?? 0) + (lists.deny?.length ?? 0) > MAX_RULE_ENTRIES) {
    throw new NbsError('NBS_OPTION_INVALID', `net lists have at most ${MAX_RULE_ENTRIES} entries`);
  }
  const allow = read(lists.allow);
  const deny = read(lists.deny);
  return {
    listedAddresses: allow.filter((rule) => isIP(rule.host) !== 0).map((rule) => ({ address: rule.host, port: rule.port })),
    decide(hostname, port) {
      const host = normalizeHost(hostname);
      if (host === null || !Number.isInteger(port) || port < 0 || port > 65535) return 'deny';
      if (deny.some((rule) => ruleMatches(rule, host, port))) return 'deny';
      return allow.some((rule) => ruleMatches(rule, host, port)) ? 'allow' : 'unlisted';
    },
  };
}

const RANGE_NAMES: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  broadcast: 'broadcast',
  multicast: 'multicast',
  linkLocal: 'link-local',
  loopback: 'loopback',
  carrierGradeNat: 'carrier-grade NAT',
  private: 'private',
  uniqueLocal: 'unique-local',
  reserved: 'reserved',
  benchmarking: 'benchmarking',
};

/**
 * 'public' or a short name of the special range. IPv4-mapped (::ffff:0:0/96) and NAT64
 * (64:ff9b::/96) addresses are judged by the IPv4 address they carry. Every other IPv6 range
 * that embeds or translates IPv4 (6to4, Teredo, 64:ff9b:1::/48, ::ffff:0:0:0/96) is non-public,
 * and so is IPv6 outside global unicast 2000::/3 (e.g. deprecated IPv4-compatible ::a.b.c.d).
 */
function addressClass(address: string): string {
  if (address.includes('%') || isIP(address) === 0) return 'invalid';
  let parsed = ipaddr.parse(address);
  if (parsed instanceof ipaddr.IPv6) {
    const [p0, p1, p2, p3, p4, p5, p6 = 0, p7 = 0] = parsed.parts;
    if (parsed.isIPv4MappedAddress()) {
      parsed = parsed.toIPv4Address();
    } else if (p0 === 0x64 && p1 === 0xff9b && p2 === 0 && p3 === 0 && p4 === 0 && p5 === 0) {
      parsed = new ipaddr.IPv4([p6 >> 8, p6 & 0xff, p7 >> 8, p7 & 0xff]);
    } else {
      const range = parsed.range();
      if (range !== 'unicast') return RANGE_NAMES[range] ?? 'special-purpose';
      return ((p0 ?? 0) & 0xe000) === 0x2000 ? 'public' : 'reserved';
    }
  }
  const range = parsed.range();
  return range === 'unicast' ? 'public' : (RANGE_NAMES[range] ?? 'special-purpose');
}

/** True only for a strictly written IP address in public unicast space (see `addressClass`). */
export function isPublicAddress(ip: string): boolean {
  return addressClass(ip) === 'public';
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

export interface NetRequest {
  readonly method: string;
  readonly url: string;
  readonly headers?: readonly (readonly [string, string])[] | Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Aborting it ends the exchange at once (connection closed, outcome `failed`). */
  readonly signal?: AbortSignal;
}

export interface NetResponse {
  readonly status: number;
  readonly statusText: string;
  /** The URL of the last hop. */
  readonly url: string;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
}

export type NetFailureReason = 'denied' | 'too-large' | 'timeout' | 'failed';

export type NetOutcome =
  | { readonly ok: true; readonly response: NetResponse }
  | {
      readonly ok: false;
      readonly reason: NetFailureReason;
      /** Human-readable, Deno-like; never holds bodies or credentials. */
      readonly message: string;
      /** The hop that failed, without userinfo; null when the URL did not parse. */
      readonly url: string | null;
      readonly host: string | null;
      readonly port: number | null;
    };

/** One per hop decision; `value` is `host:port` (or the scheme, for a non-http URL). */
export interface NetEvent {
  readonly kind: 'net';
  readonly value: string;
  readonly allowed: boolean;
  readonly reason?: string;
}

export interface GuardedFetcherOptions {
  readonly rules: NetRules;
  /**
   * Exact addresses that may be reached although they are not public: a string for any port, or
   * an address with the one port it may be reached on (what `NetRules.listedAddresses` gives).
   */
  readonly allowAddresses?: readonly (string | ListedAddress)[];
  /** Name resolution; the default asks the system resolver for all addresses. */
  readonly resolve?: (hostname: string) => Promise<readonly ResolvedAddress[]>;
  /** Default 16 MiB. */
  readonly maxResponseBytes?: number;
  /** Default 16 MiB. */
  readonly maxRequestBytes?: number;
  /** For the whole exchange, name resolution and redirects included. Default 30 s. */
  readonly timeoutMs?: number;
  /** Default 5; with 0 any redirect is a failure. */
  readonly maxRedirects?: number;
  /** Sent when the request has no user-agent header of its own. */
  readonly userAgent?: string;
  readonly onEvent?: (event: NetEvent) => void;
}

export type GuardedFetch = (request: NetRequest) => Promise<NetOutcome>;

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const DROPPED_HEADERS = new Set([
  'host', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect', 'content-length',
  'accept-encoding', 'http2-settings',
]);
const CREDENTIAL_HEADERS = new Set(['authorization', 'cookie']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const MAX_ADDRESSES = 64;

/** Ends the exchange with a given outcome. */
class Stop extends Error {
  constructor(
    readonly reason: NetFailureReason,
    message: string,
  ) {
    super(message);
  }
}

interface Target {
  readonly host: string;
  readonly port: number;
  readonly value: string;
  readonly addresses: readonly string[];
}

interface Reply {
  readonly status: number;
  readonly statusText: string;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
  /** Set for a redirect status with a Location header; the body is then not read. */
  readonly location: string | null;
}

async function systemResolve(hostname: string): Promise<readonly ResolvedAddress[]> {
  return dnsLookup(hostname, { all: true, verbatim: true });
}

function limit(value: number | undefined, fallback: number, min: number, max: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new NbsError('NBS_OPTION_INVALID', `${name} must be an integer from ${min} to ${max}`);
  return value;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function withoutCredentials(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href.length > 2048 ? `${copy.href.slice(0, 2048)}...` : copy.href;
}

function requestHeaders(input: NetRequest['headers']): [string, string][] {
  const pairs = input === undefined ? [] : Array.isArray(input) ? input : Object.entries(input as Readonly<Record<string, string>>);
  const headers: [string, string][] = [];
  for (const pair of pairs as readonly (readonly [unknown, unknown])[]) {
    const [name, value] = pair;
    if (typeof name !== 'string' || typeof value !== 'string' || !HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) {
      throw new Stop('failed', 'a request header is not valid');
    }
    const lower = name.toLowerCase();
    if (!DROPPED_HEADERS.has(lower) && !lower.startsWith('proxy-')) headers.push([name, value]);
  }
  return headers;
}

function connectionFailure(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (code.startsWith('HPE_')) return 'malformed HTTP response';
  if (code.startsWith('ERR_TLS_') || code.includes('CERT') || code.includes('SELF_SIGNED')) return 'TLS certificate not accepted';
  return 'request failed';
}

/** Creates a fetcher that enforces `options`; its outcomes are plain data, it never rejects. */
export function createGuardedFetcher(options: GuardedFetcherOptions): GuardedFetch {
  const { rules, onEvent } = options;
  const resolve = options.resolve ?? systemResolve;
  const maxResponseBytes = limit(options.maxResponseBytes, 16 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER, 'maxResponseBytes');
  const maxRequestBytes = limit(options.maxRequestBytes, 16 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER, 'maxRequestBytes');
  const timeoutMs = limit(options.timeoutMs, 30_000, 1, 2 ** 31 - 1, 'timeoutMs');
  const maxRedirects = limit(options.maxRedirects, 5, 0, 100, 'maxRedirects');
  // `address` (any port) or `address port` (that port only).
  const allowAddresses = new Set(
    (options.allowAddresses ?? []).map((entry) => {
      const { address, port } = typeof entry === 'string' ? { address: entry, port: null } : (entry ?? { address: undefined, port: null });
      if (typeof address !== 'string' || address.includes('%') || isIP(address) === 0 || (port !== null && !(Number.isInteger(port) && port >= 1 && port <= 65535))) {
        throw new NbsError('NBS_OPTION_INVALID', `allowAddresses entry ${typeof address === 'string' ? shown(address) : ''} is not an IP address with an optional port`);
      }
      return port === null ? canonicalAddress(address) : `${canonicalAddress(address)} ${port}`;
    }),
  );
  const addressAllowed = (address: string, port: number) => {
    const canonical = canonicalAddress(address);
    return allowAddresses.has(canonical) || allowAddresses.has(`${canonical} ${port}`);
  };
  const userAgent = options.userAgent;
  if (userAgent !== undefined && !HEADER_VALUE.test(userAgent)) throw new NbsError('NBS_OPTION_INVALID', 'userAgent is not a valid header value');

  const refuse = (value: string, reason: string, message: string): never => {
    onEvent?.({ kind: 'net', value, allowed: false, reason });
    throw new Stop('denied', message);
  };

  const checkHop = async (url: URL, method: string, where: { host: string | null; port: number | null }, signal: AbortSignal): Promise<Target> => {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      const scheme = url.protocol.slice(0, 20);
      refuse(scheme, 'scheme not allowed', `net access refused: ${shown(scheme)} URLs are not allowed, only http and https`);
    }
    const host = normalizeHost(url.hostname);
    if (host === null) throw new Stop('failed', 'the URL host is not valid');
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    where.host = host;
    where.port = port;
    const literal = isIP(host);
    const value = `${literal === 6 ? `[${host}]` : host}:${port}`;
    const quoted = shown(value, 270);
    if (url.username !== '' || url.password !== '') refuse(value, 'credentials in URL', `net access to ${quoted} refused: URLs with credentials are not allowed`);
    if (!METHODS.has(method)) refuse(value, 'method not allowed', `net access to ${quoted} refused: method ${shown(method, 16)} is not allowed`);
    const decision = rules.decide(host, port);
    if (decision === 'unlisted') refuse(value, 'not allowed', `Requires net access to ${quoted}`);
    if (decision === 'deny') refuse(value, 'denied', `net access to ${quoted} refused: denied by the net rules`);

    let answers: readonly ResolvedAddress[];
    if (literal !== 0) {
      answers = [{ address: host, family: literal }];
    } else {
      try {
        answers = await untilAborted(resolve(host), signal);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new Stop('failed', `cannot resolve ${quoted}`);
      }
    }
    if (!Array.isArray(answers) || answers.length === 0) throw new Stop('failed', `cannot resolve ${quoted}`);
    const addresses = answers.slice(0, MAX_ADDRESSES).map((answer: ResolvedAddress) => {
      const address: unknown = answer?.address;
      if (typeof address !== 'string' || address.includes('%') || isIP(address) === 0) throw new Stop('failed', `cannot resolve ${quoted}`);
      return address;
    });
    // Every answer must pass: a name must not mix a public address with a private one.
    for (const address of addresses) {
      const kind = addressClass(address);
      if (kind !== 'public' && !addressAllowed(address, port)) {
        refuse(value, `${kind} address`, `net access to ${quoted} refused: ${literal !== 0 ? '' : 'it resolves to a '}${kind} address`);
      }
    }
    onEvent?.({ kind: 'net', value, allowed: true });
    return { host, port, value, addresses };
  };

  const exchange = (url: URL, target: Target, method: string, headers: readonly [string, string][], body: Uint8Array, signal: AbortSignal) =>
    new Promise<Reply>((resolvePromise, rejectPromise) => {
      let settled = false;
      const settle = (action: () => void) => {
        if (settled) return;
        settled = true;
        action();
      };
      const fail = (error: unknown) => settle(() => rejectPromise(error));
      const outgoing = headers.flat();
      outgoing.push('Host', url.host, 'Accept-Encoding', 'identity', 'Connection', 'close');
      if (body.byteLength > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') outgoing.push('Content-Length', String(body.byteLength));
      if (userAgent !== undefined && !headers.some(([name]) => name.toLowerCase() === 'user-agent')) outgoing.push('User-Agent', userAgent);
      // The checked addresses are the only ones connected to; the name stays for Host and TLS.
      const pinned: LookupFunction = (_hostname, lookupOptions, callback) => {
        if (lookupOptions.all) callback(null, target.addresses.map((address) => ({ address, family: isIP(address) })));
        else callback(null, target.addresses[0] ?? '', isIP(target.addresses[0] ?? ''));
      };
      const requestOptions: RequestOptions = {
        host: target.host,
        port: target.port,
        method,
        path: `${url.pathname}${url.search}`,
        headers: outgoing,
        setHost: false,
        agent: false,
        signal,
        lookup: pinned,
        ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
      };
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      let request: ReturnType<typeof httpRequest>;
      try {
        request = send(requestOptions, (incoming: IncomingMessage) => {
          incoming.on('error', fail);
          const status = incoming.statusCode ?? 0;
          const statusText = incoming.statusMessage ?? '';
          const responseHeaders: [string, string][] = [];
          for (let index = 0; index + 1 < incoming.rawHeaders.length; index += 2) {
            responseHeaders.push([incoming.rawHeaders[index] ?? '', incoming.rawHeaders[index + 1] ?? '']);
          }
          const location = REDIRECTS.has(status) ? (incoming.headers.location ?? null) : null;
          const tooLarge = () => {
            settle(() => rejectPromise(new Stop('too-large', `net response from ${shown(target.value, 270)} is larger than ${maxResponseBytes} bytes`)));
            request.destroy();
          };
          if (location !== null) {
            settle(() => resolvePromise({ status, statusText, headers: responseHeaders, body: new Uint8Array(), location }));
            request.destroy();
            return;
          }
          const declared = Number(incoming.headers['content-length']);
          if (Number.isFinite(declared) && declared > maxResponseBytes && method !== 'HEAD') return tooLarge();
          const chunks: Buffer[] = [];
          let size = 0;
          incoming.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxResponseBytes) tooLarge();
            else chunks.push(chunk);
          });
          incoming.on('end', () => settle(() => resolvePromise({ status, statusText, headers: responseHeaders, body: new Uint8Array(Buffer.concat(chunks)), location: null })));
          incoming.on('close', () => {
            if (!incoming.complete) fail(new Stop('failed', `net request to ${shown(target.value, 270)} failed: connection closed early`));
          });
        });
      } catch (error) {
        fail(error);
        return;
      }
      request.on('error', fail);
      request.end(body);
    });

  return async (input) => {
    const where: { url: string | null; host: string | null; port: number | null } = { url: null, host: null, port: null };
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const cancel = () => controller.abort();
    input.signal?.addEventListener('abort', cancel, { once: true });
    try {
      if (input.signal?.aborted) throw new Stop('failed', 'net request cancelled: the run has ended');
      let url: URL;
      try {
        url = new URL(typeof input.url === 'string' ? input.url : '');
      } catch {
        throw new Stop('failed', 'the URL is not valid');
      }
      where.url = withoutCredentials(url);
      let method = typeof input.method === 'string' ? input.method.toUpperCase() : '';
      let headers = requestHeaders(input.headers);
      let body = input.body ?? new Uint8Array();
      if (!(body instanceof Uint8Array)) throw new Stop('failed', 'the request body is not bytes');
      if (body.byteLength > maxRequestBytes) throw new Stop('too-large', `the request body is larger than ${maxRequestBytes} bytes`);

      for (let redirects = 0; ; redirects += 1) {
        const target = await checkHop(url, method, where, controller.signal);
        let reply: Reply;
        try {
          reply = await exchange(url, target, method, headers, body, controller.signal);
        } catch (error) {
          if (error instanceof Stop || controller.signal.aborted) throw error;
          throw new Stop('failed', `net request to ${shown(target.value, 270)} failed: ${connectionFailure(error)}`);
        }
        if (reply.location === null) {
          const { status, statusText, headers: responseHeaders, body: responseBody } = reply;
          return { ok: true, response: { status, statusText, url: url.href, headers: responseHeaders, body: responseBody } };
        }
        if (redirects >= maxRedirects) throw new Stop('failed', `net request to ${shown(target.value, 270)} failed: more than ${maxRedirects} redirects`);
        let next: URL;
        try {
          next = new URL(reply.location, url);
        } catch {
          throw new Stop('failed', `net request to ${shown(target.value, 270)} failed: a redirect has an invalid location`);
        }
        if (reply.status === 303 ? method !== 'HEAD' : (reply.status === 301 || reply.status === 302) && method === 'POST') {
          method = 'GET';
          body = new Uint8Array();
          headers = headers.filter(([name]) => !name.toLowerCase().startsWith('content-'));
        }
        if (next.origin !== url.origin) headers = headers.filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase()));
        url = next;
        where.url = withoutCredentials(url);
      }
    } catch (error) {
      const failure = { url: where.url, host: where.host, port: where.port };
      if (error instanceof Stop) return { ok: false, reason: error.reason, message: error.message, ...failure };
      if (input.signal?.aborted) return { ok: false, reason: 'failed', message: 'net request cancelled: the run has ended', ...failure };
      if (controller.signal.aborted) return { ok: false, reason: 'timeout', message: `net request got no complete answer within ${timeoutMs} ms`, ...failure };
      return { ok: false, reason: 'failed', message: 'net request failed', ...failure };
    } finally {
      clearTimeout(timer);
      input.signal?.removeEventListener('abort', cancel);
    }
  };
}
