/**
 * Semgrep-style rule fixtures. A comment on the line above a target says what the checker must
 * report there: `# ruleid: <id>` (a finding), `# ok: <id>` (none), `# todoruleid: <id>` (a known
 * miss: none yet), `# todook: <id>` (a known false alarm: a finding yet). A whole notebook cell
 * (for cell magics) is annotated through its `metadata.tags`, e.g. `"ruleid:NBS-MAGIC-002"`.
 * Strict: a finding of an annotated rule on a line without `ruleid`/`todook` fails, and so does
 * an expectation without its finding.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import type { Policy } from '../policy/load.js';
import { loadInputText } from '../notebook/index.js';
import type { Checker } from './checker.js';
import type { Finding } from './types.js';

type Mark = 'ruleid' | 'ok' | 'todoruleid' | 'todook';

interface Expectation {
  readonly mark: Mark;
  readonly ruleId: string;
  /** Notebook cell index; null in a marimo file, whose findings carry file lines. */
  readonly cell: number | null;
  /** Line within the cell (file line for .py); null for a whole-cell tag. */
  readonly line: number | null;
}

export interface FixtureFailure {
  readonly file: string;
  readonly cell: number | null;
  readonly line: number | null;
  readonly ruleId: string;
  readonly problem: string;
}

export interface RuleSummary {
  readonly ruleId: string;
  readonly positive: number;
  readonly negative: number;
  readonly failures: number;
}

export interface FixtureReport {
  readonly files: number;
  readonly rules: readonly RuleSummary[];
  readonly failures: readonly FixtureFailure[];
}

const ANNOTATION = /^\s*#\s*(ruleid|ok|todoruleid|todook)\s*:\s*([A-Z0-9-]+(?:\s*,\s*[A-Z0-9-]+)*)\s*$/;
const TAG = /^(ruleid|ok|todoruleid|todook):\s*([A-Z0-9-]+)$/;

function annotationsIn(source: string, cell: number | null): Expectation[] {
  const lines = source.split('\n');
  const expectations: Expectation[] = [];
  lines.forEach((text, position) => {
    const match = ANNOTATION.exec(text);
    if (!match) return;
    let target = position + 1;
    while (target < lines.length && (lines[target]?.trim() === '' || ANNOTATION.test(lines[target] ?? ''))) target += 1;
    for (const ruleId of (match[2] ?? '').split(',').map((id) => id.trim())) {
      expectations.push({ mark: match[1] as Mark, ruleId, cell, line: target + 1 });
    }
  });
  return expectations;
}

function fixtureFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return fixtureFiles(path);
      return ['.py', '.ipynb'].includes(extname(name)) ? [path] : [];
    });
}

function cellTags(text: string): Map<number, string[]> {
  const tags = new Map<number, string[]>();
  const notebook = JSON.parse(text) as { cells?: { metadata?: { tags?: unknown } }[] };
  notebook.cells?.forEach((cell, index) => {
    const list = cell.metadata?.tags;
    if (Array.isArray(list)) tags.set(index, list.filter((tag): tag is string => typeof tag === 'string'));
  });
  return tags;
}

/** Compares the checker's findings with the annotations of one fixture file. */
function compare(file: string, expectations: readonly Expectation[], findings: readonly Finding[]): FixtureFailure[] {
  const failures: FixtureFailure[] = [];
  const rules = new Set(expectations.map((expectation) => expectation.ruleId));
  const sameCell = (cell: number | null, finding: Finding) => cell === null || cell === finding.cell;
  const found = (ruleId: string, cell: number | null, line: number | null) =>
    findings.some((finding) => finding.ruleId === ruleId && sameCell(cell, finding) && (line === null || finding.line === line));
  for (const expectation of expectations) {
    const present = found(expectation.ruleId, expectation.cell, expectation.line);
    const wanted = expectation.mark === 'ruleid' || expectation.mark === 'todook';
    if (present !== wanted) {
      const problem = {
        ruleid: 'expected a finding, got none',
        ok: 'expected no finding, got one',
        todoruleid: 'a known miss is now found: change todoruleid to ruleid',
        todook: 'a known false alarm is gone: change todook to ok',
      }[expectation.mark];
      failures.push({ file, cell: expectation.cell, line: expectation.line, ruleId: expectation.ruleId, problem });
    }
  }
  for (const finding of findings) {
    if (!rules.has(finding.ruleId)) continue;
    const annotated = expectations.some(
      (expectation) =>
        expectation.ruleId === finding.ruleId &&
        sameCell(expectation.cell, finding) &&
        (expectation.line === null || expectation.line === finding.line) &&
        (expectation.mark === 'ruleid' || expectation.mark === 'todook'),
    );
    if (!annotated) failures.push({ file, cell: finding.cell, line: finding.line, ruleId: finding.ruleId, problem: 'finding without a ruleid annotation' });
  }
  return failures;
}

/** Runs every fixture under `dir` through the checker with `policy`. */
export async function runFixtures(dir: string, policy: Policy, checker: Checker): Promise<FixtureReport> {
  const files = fixtureFiles(dir);
  const failures: FixtureFailure[] = [];
  const counts = new Map<string, { positive: number; negative: number; failures: number }>();
  for (const path of files) {
    const text = readFileSync(path, 'utf8');
    const input = loadInputText(extname(path) === '.ipynb' ? 'ipynb' : 'py', text);
    const expectations: Expectation[] =
      input.check.kind === 'marimo'
        ? annotationsIn(input.check.source, null)
        : input.check.cells.flatMap((cell) => annotationsIn(cell.source, cell.index));
    if (extname(path) === '.ipynb') {
      for (const [cell, tags] of cellTags(text)) {
        for (const tag of tags) {
          const match = TAG.exec(tag);
          if (match) expectations.push({ mark: match[1] as Mark, ruleId: match[2] ?? '', cell, line: null });
        }
      }
    }
    const result = await checker.check(input.check, policy);
    const compared = compare(relative(dir, path), expectations, result.findings);
    // A .py file is one cell (or a marimo file with file lines): its failures read file:line.
    const fileFailures = extname(path) === '.ipynb' ? compared : compared.map((failure) => ({ ...failure, cell: null }));
    failures.push(...fileFailures);
    for (const expectation of expectations) {
      const entry = counts.get(expectation.ruleId) ?? { positive: 0, negative: 0, failures: 0 };
      if (expectation.mark === 'ruleid' || expectation.mark === 'todook') entry.positive += 1;
      else entry.negative += 1;
      counts.set(expectation.ruleId, entry);
    }
    for (const failure of fileFailures) {
      const entry = counts.get(failure.ruleId) ?? { positive: 0, negative: 0, failures: 0 };
      entry.failures += 1;
      counts.set(failure.ruleId, entry);
    }
  }
  const rules = [...counts].map(([ruleId, entry]) => ({ ruleId, ...entry })).sort((a, b) => a.ruleId.localeCompare(b.ruleId));
  return { files: files.length, rules, failures };
}
