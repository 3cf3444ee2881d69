/**
 * The checker worker's answer, validated on the host. The checker never runs user code, but it
 * parses hostile input inside Pyodide; whatever comes back is checked against this schema
 * rather than cast, and an answer that does not fit is treated like a worker that broke.
 */
import * as v from 'valibot';
import { SEVERITIES } from '../policy/schema.js';
import type { CheckResult } from './types.js';

const text = (max: number) => v.pipe(v.string(), v.maxLength(max));
const position = v.pipe(v.number(), v.integer(), v.minValue(0));

const findingSchema = v.strictObject({
  ruleId: text(64),
  severity: v.picklist(SEVERITIES),
  message: text(4096),
  cell: position,
  cellId: v.nullable(text(256)),
  line: position,
  column: position,
  endLine: position,
  endColumn: position,
  bandit: v.nullable(text(16)),
});

const cellFactsSchema = v.strictObject({
  index: position,
  id: v.nullable(text(256)),
  magics: v.array(v.strictObject({ kind: v.picklist(['line', 'cell', 'shell', 'pip']), name: text(4096), line: position })),
  dependencies: v.array(text(4096)),
});

const answerSchema = v.strictObject({
  verdict: v.picklist(['allow', 'warn', 'deny']),
  findings: v.array(findingSchema),
  cells: v.array(cellFactsSchema),
  rulesetVersion: text(64),
});

/** The answer as data, or null when it is not JSON or not the shape a check returns. */
export function parseCheckAnswer(json: string): Omit<CheckResult, 'policy' | 'durationMs'> | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = v.safeParse(answerSchema, value);
  return parsed.success ? parsed.output : null;
}
