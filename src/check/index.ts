/** Static checks of notebooks and Python files against a policy. */
import { loadPolicy, type Policy } from '../policy/load.js';
import { Checker } from './checker.js';
import { isMarimoSource } from './marimo-detect.js';
import type { CheckInput, CheckResult } from './types.js';

export { Checker, verdictFor, type CheckerOptions } from './checker.js';
export type { CellFacts, CheckInput, CheckResult, Finding, MagicFact, Verdict } from './types.js';

export { isMarimoSource };

export interface CheckOptions {
  /** A loaded policy or a shipped name / file path. Default `default`. */
  readonly policy?: Policy | string;
  /** A long-lived checker to use; without one, a checker is started and closed for this call. */
  readonly checker?: Checker;
}

/**
 * Checks Python source, notebook code cells or a marimo file against a policy.
 *
 * @example
 * await using checker = new Checker();
 * const result = await checkNotebook({ kind: 'cells', cells: [{ index: 0, source: 'import os' }] }, { checker });
 */
export async function checkNotebook(input: CheckInput | string, options: CheckOptions = {}): Promise<CheckResult> {
  const policy = typeof options.policy === 'object' ? options.policy : await loadPolicy(options.policy ?? 'default');
  const checkInput: CheckInput =
    typeof input === 'string' ? (isMarimoSource(input) ? { kind: 'marimo', source: input } : { kind: 'cells', cells: [{ index: 0, source: input }] }) : input;
  if (options.checker) return options.checker.check(checkInput, policy);
  const checker = new Checker({ workers: 1 });
  try {
    return await checker.check(checkInput, policy);
  } finally {
    await checker.close();
  }
}
