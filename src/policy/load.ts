/**
 * Loads a policy by shipped name or file path: bounded read, strict JSON, no prototype keys,
 * schema check, `extends` resolved (cycles and depth refused), defaults filled, hashed.
 * Every failure is an NbsError whose message names the problem but never echoes the file.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import { NbsError, isNbsError } from '../errors.js';
import { decodeUtf8, readBoundedFile } from '../notebook/read-input.js';
import { describeIssues } from '../issues.js';
import { policyJsonSchema } from './json-schema.js';
import { policySchema, RULE_ID, type PolicyFile, type RuleSetting, type Severity } from './schema.js';

export const SHIPPED_POLICY_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'policies');
export const MAX_POLICY_BYTES = 256 * 1024;
const MAX_EXTENDS_DEPTH = 8;
const MAX_JSON_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const SHIPPED_NAME = /^[a-z][a-z0-9-]{0,63}$/;

type PermissionKind = { readonly allow: readonly string[]; readonly deny: readonly string[] };

/** A policy with `extends` resolved and every default filled in. */
export interface Policy {
  readonly id: string;
  readonly version: string;
  readonly description: string;
  /** sha256 of the resolved policy, for caches and audit logs. */
  readonly hash: string;
  readonly limits: {
    readonly maxFileBytes: number;
    readonly maxCells: number;
    readonly maxCellBytes: number;
    readonly maxOutputBytesScanned: number;
    readonly timeoutMs: number;
    readonly memoryMb: number;
  };
  readonly magics: {
    readonly allow: readonly string[];
    readonly deny: readonly string[];
    readonly unknown: Severity;
    readonly shell: Severity;
    readonly pip: Severity;
  };
  readonly imports: { readonly allow: readonly string[] | null; readonly deny: readonly string[]; readonly severity: Severity };
  readonly rules: Readonly<Record<string, RuleSetting>>;
  readonly verdict: { readonly denyAt: Severity | 'never'; readonly warnAt: Severity; readonly unparsable: Severity };
  readonly execution: {
    readonly permissions: Readonly<Record<'read' | 'write' | 'net' | 'env' | 'import', PermissionKind>>;
  };
}

const emptyKind: PermissionKind = { allow: [], deny: [] };

const DEFAULTS = {
  description: '',
  limits: {
    maxFileBytes: 16 * 1024 * 1024,
    maxCells: 5000,
    maxCellBytes: 1024 * 1024,
    maxOutputBytesScanned: 8 * 1024 * 1024,
    timeoutMs: 30_000,
    memoryMb: 512,
  },
  magics: { allow: [], deny: [], unknown: 'medium', shell: 'high', pip: 'low' },
  imports: { allow: null, deny: [], severity: 'high' },
  rules: {},
  verdict: { denyAt: 'high', warnAt: 'low', unparsable: 'high' },
  execution: { permissions: { read: emptyKind, write: emptyKind, net: emptyKind, env: emptyKind, import: emptyKind } },
} as const;

let schemaKeys: Set<string> | undefined;

/** Keys the format defines, and well-formed rule ids: the only keys an error may repeat. */
function isSafeKey(key: string): boolean {
  if (!schemaKeys) {
    schemaKeys = new Set();
    const stack: unknown[] = [policyJsonSchema()];
    while (stack.length > 0) {
      const node = stack.pop();
      if (typeof node !== 'object' || node === null) continue;
      const properties = (node as { properties?: Record<string, unknown> }).properties;
      if (properties) for (const name of Object.keys(properties)) schemaKeys.add(name);
      stack.push(...Object.values(node));
    }
  }
  return schemaKeys.has(key) || RULE_ID.test(key);
}

/** Refuses keys that could pollute prototypes when merged, and nesting deeper than the format has. */
function checkShape(value: unknown): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    if (depth > MAX_JSON_DEPTH) throw new NbsError('NBS_POLICY_INVALID', `nested deeper than ${MAX_JSON_DEPTH} levels`);
    for (const [key, child] of Object.entries(current)) {
      if (FORBIDDEN_KEYS.has(key)) throw new NbsError('NBS_POLICY_INVALID', `the key "${key}" is not allowed`);
      stack.push([child, depth + 1]);
    }
  }
}

/** Parses and validates one policy document (no `extends` resolution). */
export function parsePolicyText(text: string): PolicyFile {
  if (text.length > MAX_POLICY_BYTES) throw new NbsError('NBS_POLICY_INVALID', `larger than ${MAX_POLICY_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new NbsError('NBS_POLICY_INVALID', 'not valid JSON');
  }
  checkShape(json);
  const parsed = v.safeParse(policySchema, json);
  if (!parsed.success) throw new NbsError('NBS_POLICY_INVALID', describeIssues(parsed.issues, 'policy', isSafeKey));
  return parsed.output;
}

interface Located {
  readonly file: string;
  readonly label: string;
}

function locate(nameOrPath: string, relativeTo: string | undefined): Located {
  if (SHIPPED_NAME.test(nameOrPath)) {
    const file = join(SHIPPED_POLICY_DIR, `${nameOrPath}.json`);
    if (!existsSync(file)) throw new NbsError('NBS_POLICY_UNKNOWN', `no shipped policy "${nameOrPath}"`);
    return { file, label: nameOrPath };
  }
  return { file: resolve(relativeTo ?? process.cwd(), nameOrPath), label: 'policy file' };
}

async function readPolicyFile(located: Located): Promise<PolicyFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readBoundedFile(located.file, MAX_POLICY_BYTES);
  } catch (error) {
    if (!isNbsError(error)) throw error;
    if (error.code === 'NBS_INPUT_NOT_FOUND') throw new NbsError('NBS_POLICY_UNKNOWN', `${located.label} not found`);
    if (error.code === 'NBS_INPUT_TOO_LARGE') throw new NbsError('NBS_POLICY_INVALID', `larger than ${MAX_POLICY_BYTES} bytes`);
    throw new NbsError('NBS_POLICY_INVALID', `${located.label} cannot be read`);
  }
  let text: string;
  try {
    text = decodeUtf8(bytes);
  } catch {
    throw new NbsError('NBS_POLICY_INVALID', 'not valid UTF-8');
  }
  return parsePolicyText(text);
}

type Plain = Record<string, unknown>;

/** Objects merge key by key; arrays and scalars of the child replace the parent's. */
function merge(parent: Plain, child: Plain): Plain {
  const result: Plain = { ...parent };
  for (const [key, value] of Object.entries(child)) {
    const base = result[key];
    const bothObjects = [base, value].every((item) => typeof item === 'object' && item !== null && !Array.isArray(item));
    result[key] = bothObjects ? merge(base as Plain, value as Plain) : value;
  }
  return result;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Plain)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

async function resolveChain(nameOrPath: string): Promise<PolicyFile[]> {
  const chain: PolicyFile[] = [];
  const seen = new Set<string>();
  let next: string | undefined = nameOrPath;
  let relativeTo: string | undefined;
  while (next !== undefined) {
    if (chain.length >= MAX_EXTENDS_DEPTH) throw new NbsError('NBS_POLICY_INVALID', `extends is deeper than ${MAX_EXTENDS_DEPTH} levels`);
    const located = locate(next, relativeTo);
    if (seen.has(located.file)) throw new NbsError('NBS_POLICY_CYCLE');
    seen.add(located.file);
    const policy = await readPolicyFile(located);
    chain.push(policy);
    next = policy.extends;
    relativeTo = dirname(located.file);
  }
  return chain;
}

/** Completes a parsed policy chain (most derived first) into a resolved policy. */
export function resolvePolicy(chain: readonly PolicyFile[]): Policy {
  const [own] = chain;
  if (!own) throw new NbsError('NBS_POLICY_INVALID', 'empty policy chain');
  let merged: Plain = structuredClone(DEFAULTS) as unknown as Plain;
  for (const layer of [...chain].reverse()) {
    const { $schema: _schema, extends: _extends, ...content } = layer;
    merged = merge(merged, content as Plain);
  }
  merged['id'] = own.id;
  merged['version'] = own.version;
  const withoutHash = merged as unknown as Omit<Policy, 'hash'>;
  const hash = createHash('sha256').update(canonicalJson(withoutHash)).digest('hex');
  return { ...withoutHash, hash };
}

/**
 * Loads a shipped policy by name (`strict`, `default`, `permissive`) or a policy file by path.
 *
 * @example
 * const policy = await loadPolicy('default');
 */
export async function loadPolicy(nameOrPath: string): Promise<Policy> {
  if (typeof nameOrPath !== 'string' || nameOrPath.length === 0 || nameOrPath.includes('\0')) {
    throw new NbsError('NBS_POLICY_UNKNOWN', 'a policy name or path is required');
  }
  return resolvePolicy(await resolveChain(nameOrPath));
}

/** Names of the policies shipped in policies/. */
export function shippedPolicyNames(): string[] {
  return readdirSync(SHIPPED_POLICY_DIR)
    .filter((file) => file.endsWith('.json') && file !== 'schema.json')
    .map((file) => file.slice(0, -'.json'.length))
    .sort();
}
