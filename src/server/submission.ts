/**
 * What a check or run request submits, from multipart/form-data or JSON, validated with valibot
 * (through @hono/valibot-validator with a hook that never echoes the input) and turned into the
 * text of a notebook or Python file.
 */
import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { vValidator } from '@hono/valibot-validator';
import * as v from 'valibot';
import { NbsError } from '../errors.js';
import { decodeUtf8 } from '../notebook/read-input.js';
import { MAX_JSON_DEPTH, jsonNestsDeeper } from '../shared/json-depth.js';
import type { GuardedFetch } from '../sandbox/permissions/net.js';

const MAX_FILENAME = 255;
const policyName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,63}$/, 'policy must be a policy name'));
const timeoutMs = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(24 * 3600 * 1000));
const filename = v.pipe(v.string(), v.minLength(1), v.maxLength(MAX_FILENAME));

export const jsonSubmissionSchema = v.union([
  v.strictObject({ notebook: v.looseObject({}), policy: v.optional(policyName), timeoutMs: v.optional(timeoutMs) }),
  v.strictObject({ source: v.string(), filename: v.optional(filename), policy: v.optional(policyName), timeoutMs: v.optional(timeoutMs) }),
  v.strictObject({ url: v.pipe(v.string(), v.maxLength(2048)), policy: v.optional(policyName), timeoutMs: v.optional(timeoutMs) }),
]);

export const formSubmissionSchema = v.strictObject({
  file: v.pipe(
    v.instance(File, 'file must be an uploaded file'),
    v.check((file) => file.name.length >= 1 && file.name.length <= MAX_FILENAME, 'file needs a name of at most 255 characters'),
  ),
  policy: v.optional(policyName),
  timeoutMs: v.optional(v.pipe(v.string(), v.regex(/^\d{1,8}$/), v.transform(Number), timeoutMs)),
});

export interface Submission {
  readonly kind: 'ipynb' | 'py';
  readonly text: string;
  /** Sanitised for logs and results; never used as a path. */
  readonly filename: string;
  readonly policy: string | undefined;
  readonly timeoutMs: number | undefined;
  readonly bytes: number;
  readonly sha256: string;
  /** Fetched from a URL by the server (the same request may bring other code next time). */
  readonly fetched: boolean;
}

/** A validation failure as our error, naming only the fields at fault. */
function validationHook(result: { success: boolean; issues?: readonly v.BaseIssue<unknown>[] | undefined }): void {
  if (result.success) return;
  const fields = [...new Set((result.issues ?? []).map((issue) => issue.path?.map((item) => String(item.key)).join('.') || 'body'))]
    .filter((field) => /^[a-zA-Z.]{1,40}$/.test(field))
    .slice(0, 5);
  throw new NbsError('NBS_REQUEST_INVALID', fields.length > 0 ? `check ${fields.join(', ')}` : undefined);
}

const jsonValidator = vValidator('json', jsonSubmissionSchema, validationHook);
const formValidator = vValidator('form', formSubmissionSchema, validationHook);

/** The request's media type without parameters, lower-cased ('' when there is none). */
export function mediaTypeOf(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Validates the body by its media type; anything but JSON and multipart is 415. */
export const validateSubmission: MiddlewareHandler = async (c, next) => {
  const type = mediaTypeOf(c);
  if (type === 'application/json') {
    // The notebook sits one level inside the body.
    const text = await c.req.text();
    if (jsonNestsDeeper(text, MAX_JSON_DEPTH + 1)) throw new NbsError('NBS_REQUEST_INVALID', `nested deeper than ${MAX_JSON_DEPTH} levels`);
    // A body has a handful of fields: millions of unknown keys would each be reported by the
    // schema, per union branch, before it refused them.
    if (!hasFewKeys(text)) throw new NbsError('NBS_REQUEST_INVALID', 'the body has fields that are not known');
    return jsonValidator(c, next);
  }
  if (type === 'multipart/form-data') return formValidator(c, next);
  throw new NbsError('NBS_MEDIA_TYPE_UNSUPPORTED');
};

/** Most top-level fields a submission has (notebook/source/url, filename, policy, timeoutMs). */
const MAX_FIELDS = 8;

function hasFewKeys(text: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return true; // the validator answers malformed JSON itself
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return true;
  let keys = 0;
  for (const _key in value) if (++keys > MAX_FIELDS) return false;
  return true;
}

/** Printable, short and without path parts: safe to log and to show. */
export function sanitiseFilename(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  const clean = base.replace(/[^\w.\- ]/g, '_').slice(0, 100);
  return clean === '' || /^\.+$/.test(clean) ? 'upload' : clean;
}

function kindOf(name: string): 'ipynb' | 'py' {
  const lower = name.toLowerCase();
  if (lower.endsWith('.ipynb')) return 'ipynb';
  if (lower.endsWith('.py')) return 'py';
  throw new NbsError('NBS_INPUT_UNSUPPORTED_TYPE');
}

function described(
  kind: 'ipynb' | 'py',
  text: string,
  name: string,
  extra: { policy?: string | undefined; timeoutMs?: number | undefined },
  fetched = false,
): Submission {
  const bytes = Buffer.from(text, 'utf8');
  return {
    kind,
    text,
    filename: sanitiseFilename(name),
    policy: extra.policy,
    timeoutMs: extra.timeoutMs,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    fetched,
  };
}

/** Reads the validated submission; a URL is fetched through the SSRF-guarded fetcher. */
export async function readSubmission(c: Context, fetchNotebook: GuardedFetch | null, maxBytes: number): Promise<Submission> {
  if (mediaTypeOf(c) === 'multipart/form-data') {
    const form = (c.req.valid as (target: 'form') => v.InferOutput<typeof formSubmissionSchema>)('form');
    if (form.file.size > maxBytes) throw new NbsError('NBS_INPUT_TOO_LARGE');
    const text = decodeUtf8(new Uint8Array(await form.file.arrayBuffer()));
    return described(kindOf(form.file.name), text, form.file.name, form);
  }
  const body = (c.req.valid as (target: 'json') => v.InferOutput<typeof jsonSubmissionSchema>)('json');
  if ('notebook' in body) return described('ipynb', JSON.stringify(body.notebook), 'notebook.ipynb', body);
  if ('source' in body) {
    const name = body.filename ?? 'source.py';
    return described(kindOf(name), body.source, name, body);
  }
  if (!fetchNotebook) throw new NbsError('NBS_FETCH_REFUSED', 'fetching by URL is not enabled on this server');
  const outcome = await fetchNotebook({ method: 'GET', url: body.url });
  if (!outcome.ok) {
    if (outcome.reason === 'too-large') throw new NbsError('NBS_INPUT_TOO_LARGE');
    throw new NbsError('NBS_FETCH_REFUSED', outcome.reason === 'denied' ? 'the host is not allowed' : 'the fetch failed');
  }
  if (outcome.response.status !== 200) throw new NbsError('NBS_FETCH_REFUSED', `the server answered ${outcome.response.status}`);
  const name = new URL(outcome.response.url).pathname.split('/').pop() ?? 'notebook.ipynb';
  return described(kindOf(name), decodeUtf8(outcome.response.body), name, body, true);
}
