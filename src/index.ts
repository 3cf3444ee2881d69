/**
 * nbsandbox: check and run untrusted notebooks and Python files in an isolated Pyodide sandbox.
 */
export { createSandbox, defaultPoolSize, Sandbox, type SandboxOptions, type SandboxStats } from './sandbox/sandbox.js';
export type {
  AuditEvent,
  CellResult,
  CodeCell,
  PermissionKind,
  PermissionList,
  WrittenFile,
  IsolationReport,
  NotebookOutput,
  RunInput,
  RunOptions,
  RunPermissions,
  RunResult,
  RunStatus,
} from './sandbox/types.js';
export { NbsError, errorCodes, isNbsError, type ErrorCode, type ErrorInfo } from './errors.js';
export { loadPolicy, shippedPolicyNames, type Policy } from './policy/load.js';
export { policyPermissions } from './sandbox/permissions/from-policy.js';
export type { PolicyFile, Severity } from './policy/schema.js';
export { Checker, checkNotebook, isMarimoSource, type CheckOptions, type CheckerOptions } from './check/index.js';
export type { CellFacts, CheckInput, CheckResult, Finding, MagicFact, Verdict } from './check/index.js';
export { loadInputFile, loadInputText, type InputLimits, type LoadedInput } from './notebook/index.js';
