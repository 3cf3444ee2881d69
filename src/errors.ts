/**
 * The single registry of nbsandbox error codes, shared by the library, the CLI, the HTTP API and
 * the audit log. Every code has a fixed HTTP status and a message that never contains host paths,
 * stack traces or the submitted input.
 */

export const errorCodes = {
  NBS_USAGE: { status: 400, message: 'The command line or option is not valid' },
  NBS_OPTION_INVALID: { status: 400, message: 'An option has a value outside its allowed range' },
  NBS_INPUT_NOT_FOUND: { status: 400, message: 'The input file does not exist' },
  NBS_INPUT_NOT_FILE: { status: 400, message: 'The input is not a regular file' },
  NBS_INPUT_UNREADABLE: { status: 400, message: 'The input file cannot be read' },
  NBS_INPUT_TOO_LARGE: { status: 413, message: 'The input is larger than allowed' },
  NBS_INPUT_NOT_UTF8: { status: 400, message: 'The input is not valid UTF-8 text' },
  NBS_INPUT_UNSUPPORTED_TYPE: { status: 415, message: 'The input is neither a .ipynb notebook nor a .py file' },
  NBS_NOTEBOOK_INVALID_JSON: { status: 422, message: 'The notebook is not valid JSON' },
  NBS_NOTEBOOK_INVALID: { status: 422, message: 'The notebook does not follow nbformat v4' },
  NBS_NOTEBOOK_UNSUPPORTED_VERSION: { status: 422, message: 'The notebook format version is not supported' },
  NBS_NOTEBOOK_TOO_MANY_CELLS: { status: 413, message: 'The notebook has more cells than allowed' },
  NBS_POLICY_UNKNOWN: { status: 422, message: 'The policy is not known' },
  NBS_POLICY_INVALID: { status: 422, message: 'The policy file is not valid' },
  NBS_POLICY_CYCLE: { status: 422, message: 'The policy extends itself through a cycle' },
  NBS_POLICY_FORBIDDEN: { status: 403, message: 'This server does not let requests use that policy' },
  NBS_CHECKER_FAILED: { status: 500, message: 'The static checker is not available' },
  NBS_RUNTIME_UNAVAILABLE: { status: 500, message: 'The sandbox runtime is not installed for this platform' },
  NBS_SANDBOX_START_FAILED: { status: 500, message: 'A sandbox process failed to start' },
  NBS_SANDBOX_CRASHED: { status: 500, message: 'The sandbox process ended unexpectedly' },
  NBS_SANDBOX_PROTOCOL: { status: 500, message: 'The sandbox process sent a malformed message' },
  NBS_SANDBOX_CLOSED: { status: 503, message: 'The sandbox has been closed' },
  NBS_PACKAGE_INVALID: { status: 500, message: 'A granted package is missing from the package directory or does not match its recorded hash' },
  NBS_PERMISSION_TOO_LARGE: { status: 413, message: 'The files granted for reading are more or larger than allowed' },
  NBS_TIMEOUT: { status: 200, message: 'The run exceeded its time limit' },
  NBS_MEMORY: { status: 200, message: 'The run exceeded its memory limit' },
  NBS_OUTPUT_LIMIT: { status: 200, message: 'The run wrote more output than allowed and was stopped' },
  NBS_CONFIG_INVALID: { status: 500, message: 'The server configuration is not valid' },
  NBS_REQUEST_INVALID: { status: 400, message: 'The request is not valid' },
  NBS_UNAUTHORIZED: { status: 401, message: 'A valid API key is required' },
  NBS_FORBIDDEN: { status: 403, message: 'The request was refused' },
  NBS_HOST_NOT_ALLOWED: { status: 403, message: 'The Host of the request is not one this server answers to' },
  NBS_NOT_FOUND: { status: 404, message: 'There is nothing at this address' },
  NBS_METHOD_NOT_ALLOWED: { status: 405, message: 'The method is not allowed here' },
  NBS_MEDIA_TYPE_UNSUPPORTED: { status: 415, message: 'Send multipart/form-data or application/json' },
  NBS_FETCH_REFUSED: { status: 422, message: 'The notebook URL cannot be fetched' },
  NBS_RATE_LIMITED: { status: 429, message: 'Too many requests; retry later' },
  NBS_BUSY: { status: 503, message: 'The sandbox queue is full; retry later' },
  NBS_INTERNAL: { status: 500, message: 'Internal error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** Plain-data form of an error, safe to print, serialise and log. */
export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly message: string;
}

export class NbsError extends Error {
  override readonly name = 'NbsError';
  readonly code: ErrorCode;
  readonly status: number;

  /** `detail` must be safe to show to whoever sent the input: no paths, no input echo. */
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ? `${errorCodes[code].message}: ${detail}` : errorCodes[code].message, options);
    this.code = code;
    this.status = errorCodes[code].status;
  }

  toJSON(): ErrorInfo {
    return { code: this.code, message: this.message };
  }
}

export function isNbsError(error: unknown): error is NbsError {
  return error instanceof NbsError;
}
