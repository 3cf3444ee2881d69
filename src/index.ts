/**
 * nbsandbox: check and run untrusted notebooks and Python files in an isolated Pyodide sandbox.
 */
export { createSandbox, Sandbox, type SandboxOptions } from './sandbox/sandbox.js';
export type {
  CellResult,
  CodeCell,
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
export type { PolicyFile, Severity } from './policy/schema.js';
