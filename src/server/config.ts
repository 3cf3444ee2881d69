/**
 * Server configuration from the environment, checked with valibot at start: a bad value stops
 * the server with a message naming the variable (never its value, which may be a secret).
 */
import { isIP } from 'node:net';
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import { defaultCheckerWorkers } from '../check/checker.js';
import { defaultPoolSize } from '../sandbox/sandbox.js';

export interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly redisUrl: string | null;
  /** Bearer keys; when any is set, /v1/run requires one (and /v1/check with `keysForCheck`). */
  readonly apiKeys: readonly string[];
  readonly keysForCheck: boolean;
  /** Proxy addresses whose X-Forwarded-For is believed. */
  readonly trustProxy: readonly string[];
  /** Host names (`name`, `name:port`, `*`) served besides localhost and HOST. */
  readonly allowedHosts: readonly string[];
  readonly bodyLimit: number;
  /** Requests per minute per client; 0 turns the limiter off. */
  readonly rateLimitCheck: number;
  readonly rateLimitRun: number;
  /** For every other route (page, assets, policies, health). */
  readonly rateLimitOther: number;
  readonly logFile: string | null;
  /** The policy used when a request names none. */
  readonly policy: string;
  /** Policy ids requests may name besides the default; null: every shipped policy. */
  readonly policies: readonly string[] | null;
  /** Hosts `{ "url": … }` submissions may be fetched from (net permission syntax). */
  readonly fetchHosts: readonly string[];
  /** Runs executing at once, and runs allowed to wait for one; beyond that, 503. */
  readonly maxConcurrentRuns: number;
  readonly maxQueuedRuns: number;
  /** Sandbox processes kept started and ready ahead of runs. */
  readonly warmSandboxes: number;
  /** Serve Prometheus metrics at /metrics. */
  readonly metrics: boolean;
  /** Longest run a request may ask for. */
  readonly maxRunTimeoutMs: number;
  /** Send Strict-Transport-Security (served over TLS or behind a TLS proxy). */
  readonly hsts: boolean;
  /** Bytes of run answers written but not yet read by their clients before new runs get 503. */
  readonly responseBufferLimit: number;
  /** Open connections the server accepts at once. */
  readonly maxConnections: number;
  /** Checker worker threads, and how long one check may take before its worker is replaced. */
  readonly checkWorkers: number;
  readonly checkTimeoutMs: number;
  readonly shutdownGraceMs: number;
}

const integer = (min: number, max: number) =>
  v.pipe(v.string(), v.regex(/^\d+$/, 'must be a whole number'), v.transform(Number), v.minValue(min, `must be at least ${min}`), v.maxValue(max, `must be at most ${max}`));
const list = v.pipe(
  v.string(),
  v.transform((text) => text.split(',').map((item) => item.trim()).filter((item) => item !== '')),
);
const flag = v.pipe(v.picklist(['0', '1', 'true', 'false']), v.transform((text) => text === '1' || text === 'true'));

const envSchema = v.object({
  PORT: v.optional(integer(0, 65535), '8080'),
  HOST: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(255)), '127.0.0.1'),
  REDIS_URL: v.optional(v.pipe(v.string(), v.regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'))),
  NBS_API_KEYS: v.optional(v.pipe(list, v.check((keys) => keys.every((key) => key.length >= 16), 'keys must be at least 16 characters'))),
  NBS_API_KEYS_FOR_CHECK: v.optional(flag, 'false'),
  NBS_TRUST_PROXY: v.optional(v.pipe(list, v.check((items) => items.every((item) => isIP(item) !== 0), 'must list IP addresses'))),
  NBS_ALLOWED_HOSTS: v.optional(
    v.pipe(list, v.check((items) => items.every((item) => item === '*' || /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253})(?::\d{1,5})?$/.test(item)), 'must list host names, name:port or *')),
  ),
  NBS_BODY_LIMIT: v.optional(integer(1024, 512 * 1024 * 1024), String(16 * 1024 * 1024)),
  NBS_RATE_LIMIT_CHECK: v.optional(integer(0, 1_000_000), '120'),
  NBS_RATE_LIMIT_RUN: v.optional(integer(0, 1_000_000), '20'),
  NBS_RATE_LIMIT_OTHER: v.optional(integer(0, 1_000_000), '600'),
  NBS_LOG_FILE: v.optional(v.pipe(v.string(), v.minLength(1))),
  NBS_POLICY: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024)), 'default'),
  NBS_POLICIES: v.optional(
    v.union([
      v.literal('*'),
      v.pipe(list, v.check((names) => names.length > 0 && names.every((name) => /^[a-z][a-z0-9-]{0,63}$/.test(name)), 'must be * or policy ids separated by commas')),
    ]),
    '*',
  ),
  NBS_FETCH_HOSTS: v.optional(list),
  NBS_MAX_RUNS: v.optional(integer(1, 256), String(defaultPoolSize())),
  NBS_WARM_SANDBOXES: v.optional(integer(0, 256), String(defaultPoolSize())),
  NBS_METRICS: v.optional(flag, 'true'),
  NBS_MAX_QUEUED_RUNS: v.optional(integer(0, 10_000), '16'),
  NBS_MAX_RUN_TIMEOUT_MS: v.optional(integer(1000, 3_600_000), '60000'),
  NBS_HSTS: v.optional(flag, 'false'),
  NBS_RESPONSE_BUFFER_LIMIT: v.optional(integer(1024 * 1024, 64 * 1024 * 1024 * 1024), String(256 * 1024 * 1024)),
  NBS_MAX_CONNECTIONS: v.optional(integer(1, 1_000_000), '1024'),
  NBS_CHECK_WORKERS: v.optional(integer(1, 64), String(defaultCheckerWorkers())),
  NBS_CHECK_TIMEOUT_MS: v.optional(integer(100, 600_000), '30000'),
  NBS_SHUTDOWN_GRACE_MS: v.optional(integer(0, 600_000), '10000'),
});

/** Reads and checks the configuration; throws NBS_CONFIG_INVALID naming the first bad variable. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const known = Object.fromEntries(Object.keys(envSchema.entries).filter((name) => env[name] !== undefined).map((name) => [name, env[name]]));
  const parsed = v.safeParse(envSchema, known);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const name = issue.path?.[0]?.key;
    // valibot's own messages quote the received value, which may be a secret.
    const why = issue.message.includes('received') ? 'has a value that is not allowed' : issue.message;
    throw new NbsError('NBS_CONFIG_INVALID', `${typeof name === 'string' ? name : 'the environment'} ${why}`);
  }
  const e = parsed.output;
  return {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL ?? null,
    apiKeys: e.NBS_API_KEYS ?? [],
    keysForCheck: e.NBS_API_KEYS_FOR_CHECK,
    trustProxy: e.NBS_TRUST_PROXY ?? [],
    allowedHosts: e.NBS_ALLOWED_HOSTS ?? [],
    bodyLimit: e.NBS_BODY_LIMIT,
    rateLimitCheck: e.NBS_RATE_LIMIT_CHECK,
    rateLimitRun: e.NBS_RATE_LIMIT_RUN,
    rateLimitOther: e.NBS_RATE_LIMIT_OTHER,
    logFile: e.NBS_LOG_FILE ?? null,
    policy: e.NBS_POLICY,
    policies: e.NBS_POLICIES === '*' ? null : e.NBS_POLICIES,
    fetchHosts: e.NBS_FETCH_HOSTS ?? [],
    maxConcurrentRuns: e.NBS_MAX_RUNS,
    maxQueuedRuns: e.NBS_MAX_QUEUED_RUNS,
    warmSandboxes: e.NBS_WARM_SANDBOXES,
    metrics: e.NBS_METRICS,
    maxRunTimeoutMs: e.NBS_MAX_RUN_TIMEOUT_MS,
    hsts: e.NBS_HSTS,
    responseBufferLimit: e.NBS_RESPONSE_BUFFER_LIMIT,
    maxConnections: e.NBS_MAX_CONNECTIONS,
    checkWorkers: e.NBS_CHECK_WORKERS,
    checkTimeoutMs: e.NBS_CHECK_TIMEOUT_MS,
    shutdownGraceMs: e.NBS_SHUTDOWN_GRACE_MS,
  };
}
