/** The result of a run that the static check refused: no user code ran. */
import { randomUUID } from 'node:crypto';
import type { CheckResult } from '../check/types.js';
import { isolationReport } from './isolation.js';
import type { RunResult } from './types.js';

export function deniedResult(check: CheckResult): RunResult {
  return {
    status: 'denied',
    cells: [],
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: 0,
    peakMemoryMb: null,
    isolation: isolationReport(true),
    runId: randomUUID(),
    check,
  };
}
