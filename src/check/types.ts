/** Public types of a static check: its findings, verdict and per-cell facts. */
import type { Severity } from '../policy/schema.js';

export type Verdict = 'allow' | 'warn' | 'deny';

export interface Finding {
  readonly ruleId: string;
  readonly severity: Severity;
  readonly message: string;
  /** Notebook cell index (counting non-code cells); 0 for a plain .py file. */
  readonly cell: number;
  readonly cellId: string | null;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
  /** The matching Bandit test id, where there is one. */
  readonly bandit: string | null;
}

export interface MagicFact {
  readonly kind: 'line' | 'cell' | 'shell' | 'pip';
  readonly name: string;
  readonly line: number;
}

export interface CellFacts {
  readonly index: number;
  readonly id: string | null;
  readonly magics: readonly MagicFact[];
  readonly dependencies: readonly string[];
}

export interface CheckResult {
  readonly verdict: Verdict;
  readonly findings: readonly Finding[];
  readonly cells: readonly CellFacts[];
  readonly policy: { readonly id: string; readonly hash: string };
  readonly rulesetVersion: string;
  readonly durationMs: number;
}

/** What the checker analyses: code cells of a notebook or .py file, or a whole marimo file. */
export type CheckInput =
  | { readonly kind: 'cells'; readonly cells: readonly { readonly index: number; readonly id?: string; readonly source: string }[] }
  | { readonly kind: 'marimo'; readonly source: string };
