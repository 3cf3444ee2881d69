/**
 * Who is asking and how often: the client key (socket address; X-Forwarded-For only from a
 * trusted proxy), API keys compared in constant time, and rate limits per route group.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import { rateLimiter, type Store } from 'hono-rate-limiter';
import ipaddr from 'ipaddr.js';
import { NbsError } from '../errors.js';

/** One spelling per address: `::ffff:10.0.0.1` is `10.0.0.1`, IPv6 in its short form. */
function canonical(address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address;
}

/** The client's address: the socket's, or from X-Forwarded-For when the socket is a trusted proxy. */
export function clientAddress(c: Context, trustProxyEntries: readonly string[]): string {
  let address = 'unknown';
  try {
    address = canonical(getConnInfo(c).remote.address ?? 'unknown');
  } catch {
    // no socket (in-process requests in tests): every request is the same client
  }
  const trustProxy = trustProxyEntries.map(canonical);
  if (!trustProxy.includes(address)) return address;
  // The right-most address that is not one of our proxies is the one our proxy saw.
  const hops = (c.req.header('x-forwarded-for') ?? '').split(',').map((hop) => canonical(hop.trim())).filter((hop) => hop !== '');
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const hop = hops[index] as string;
    if (!trustProxy.includes(hop)) return hop.slice(0, 64);
  }
  return address;
}

/** For logs: identifies a client across lines without storing its address. */
export function clientHash(address: string): string {
  return createHash('sha256').update(`nbsandbox:${address}`).digest('hex').slice(0, 16);
}

function sameKey(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Requires `Authorization: Bearer <key>` with one of `keys`; calls `onFailure` before refusing. */
export function requireApiKey(keys: readonly string[], onFailure: (c: Context) => void): MiddlewareHandler {
  return async function apiKey(c, next) {
    const header = c.req.header('authorization') ?? '';
    const given = /^Bearer ([!-~]{1,512})$/.exec(header)?.[1];
    // Every key is compared, so the time does not depend on which one matched.
    const matches = given === undefined ? [] : keys.map((key) => sameKey(given, key));
    if (!matches.includes(true)) {
      onFailure(c);
      c.header('WWW-Authenticate', 'Bearer');
      throw new NbsError('NBS_UNAUTHORIZED');
    }
    await next();
  };
}

export interface LimitOptions {
  /** Requests per minute per client; 0 turns the limiter off. */
  readonly perMinute: number;
  readonly store?: Store | undefined;
  readonly keyOf: (c: Context) => string;
  readonly onLimited: (c: Context) => void;
  /** Separates budgets that share one store (`check`, `run`). */
  readonly name: string;
}

export function rateLimit(options: LimitOptions): MiddlewareHandler {
  if (options.perMinute === 0) {
    return async function noRateLimit(_c, next) {
      await next();
    };
  }
  return rateLimiter({
    windowMs: 60_000,
    limit: options.perMinute,
    standardHeaders: 'draft-7',
    keyGenerator: (c) => `${options.name}:${options.keyOf(c)}`,
    ...(options.store ? { store: options.store } : {}),
    // The limiter has set RateLimit, RateLimit-Policy and Retry-After on the context by now.
    handler: (c) => {
      options.onLimited(c);
      throw new NbsError('NBS_RATE_LIMITED');
    },
  });
}
