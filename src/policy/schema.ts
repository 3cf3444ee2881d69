/**
 * The policy file format: a valibot schema that is both the validator and, through
 * @valibot/to-json-schema, the published JSON Schema (policies/schema.json).
 */
import * as v from 'valibot';

export const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

const severity = v.pipe(v.picklist(SEVERITIES), v.description('Severity of a finding, from least to most serious.'));

/** Rule ids look like NBS-EXEC-001. */
export const RULE_ID = /^NBS-[A-Z]+-\d{3}$/;
const ruleId = v.pipe(v.string(), v.regex(RULE_ID), v.description('A rule id such as NBS-EXEC-001.'));

/** Python module names: dotted identifiers, `*` alone allowed only where documented. */
const moduleName = v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/), v.maxLength(200));
/** `name` matches the line and the cell magic; `%name` only the line magic, `%%name` only the cell magic. */
const magicName = v.pipe(v.string(), v.regex(/^%{0,2}[A-Za-z_][A-Za-z0-9_]*$/), v.maxLength(64));
const shortText = v.pipe(v.string(), v.maxLength(4096));
const list = <T extends v.GenericSchema>(item: T) => v.pipe(v.array(item), v.maxLength(1000));

const positive = (max: number) => v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(max));

const limitsSchema = v.strictObject({
  maxFileBytes: v.pipe(v.optional(positive(512 * 1024 * 1024)), v.description('Largest input file accepted, in bytes.')),
  maxCells: v.pipe(v.optional(positive(100_000)), v.description('Most cells a notebook may have.')),
  maxCellBytes: v.pipe(v.optional(positive(64 * 1024 * 1024)), v.description('Largest source of one cell, in bytes.')),
  maxOutputBytesScanned: v.pipe(v.optional(positive(512 * 1024 * 1024)), v.description('Stored outputs validated when reading a notebook, in bytes (JSON text); a notebook with more is refused.')),
  timeoutMs: v.pipe(v.optional(positive(24 * 3600 * 1000)), v.description('Wall-clock limit of a run, in milliseconds.')),
  memoryMb: v.pipe(v.optional(v.pipe(v.number(), v.integer(), v.minValue(64), v.maxValue(3584))), v.description('Python heap limit of a run, in MiB.')),
});

const magicsSchema = v.strictObject({
  allow: v.pipe(v.optional(list(magicName)), v.description('Line or cell magics that are harmless here (findings of severity info).')),
  deny: v.pipe(v.optional(list(magicName)), v.description('Magics that are always critical. Deny wins over allow.')),
  unknown: v.pipe(v.optional(severity), v.description('Severity for magics on neither list.')),
  shell: v.pipe(v.optional(severity), v.description('Severity for `!command` lines and shell cell magics.')),
  pip: v.pipe(v.optional(severity), v.description('Severity for `%pip`/`!pip install`, recorded as dependencies.')),
});

const importsSchema = v.strictObject({
  allow: v.pipe(
    v.optional(list(moduleName)),
    v.description('When given, only these modules (and their submodules) may be imported, besides the standard library.'),
  ),
  deny: v.pipe(v.optional(list(moduleName)), v.description('Modules (and their submodules) that may never be imported. Deny wins.')),
  severity: v.pipe(v.optional(severity), v.description('Severity of an import the lists refuse.')),
});

const ruleSetting = v.union([
  v.literal('off'),
  severity,
  v.strictObject({
    enabled: v.optional(v.boolean()),
    severity: v.optional(severity),
  }),
]);

const verdictSchema = v.strictObject({
  denyAt: v.pipe(
    v.optional(v.union([severity, v.literal('never')])),
    v.description('Any finding at or above this severity makes the verdict deny; "never" only warns.'),
  ),
  warnAt: v.pipe(v.optional(severity), v.description('Any finding at or above this severity (and below denyAt) makes it warn.')),
  unparsable: v.pipe(v.optional(severity), v.description('Severity of a cell whose Python cannot be parsed.')),
});

const permissionKind = v.strictObject({
  allow: v.optional(list(v.pipe(v.string(), v.minLength(1), v.maxLength(4096)))),
  deny: v.optional(list(v.pipe(v.string(), v.minLength(1), v.maxLength(4096)))),
});

const executionSchema = v.strictObject({
  permissions: v.pipe(
    v.optional(
      v.strictObject({
        read: v.optional(permissionKind),
        write: v.optional(permissionKind),
        net: v.optional(permissionKind),
        env: v.optional(permissionKind),
        import: v.optional(permissionKind),
      }),
    ),
    v.description('Deno-style grants for runs: absent means denied, deny wins over allow.'),
  ),
});

export const policySchema = v.pipe(
  v.strictObject({
    $schema: v.optional(shortText),
    id: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,63}$/), v.description('Short name of the policy.')),
    version: v.pipe(v.string(), v.regex(/^\d+\.\d+\.\d+$/), v.description('Semantic version of this policy file.')),
    description: v.optional(shortText),
    extends: v.pipe(v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(1024))), v.description('A shipped policy name or a path relative to this file.')),
    limits: v.optional(limitsSchema),
    magics: v.optional(magicsSchema),
    imports: v.optional(importsSchema),
    rules: v.pipe(v.optional(v.record(ruleId, ruleSetting)), v.description('Per-rule overrides: "off", a severity, or { enabled, severity }.')),
    verdict: v.optional(verdictSchema),
    execution: v.optional(executionSchema),
  }),
  v.title('nbsandbox policy'),
  v.description('What nbsandbox checks before a run and what a run may touch.'),
);

export type PolicyFile = v.InferOutput<typeof policySchema>;
export type RuleSetting = v.InferOutput<typeof ruleSetting>;
