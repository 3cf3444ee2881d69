/**
 * Run answers that are written but not yet delivered. A client that asks for runs and never
 * reads its answers leaves them buffered in the server; their bytes count against a budget,
 * past which new runs are refused (503) until answers drain, and an answer that is not taken
 * within a deadline is dropped with its connection.
 */
import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';

/** How long a client may take to read one answer once it is written. */
const DELIVERY_DEADLINE_MS = 60_000;

export class UnsentAnswers {
  private bytes = 0;

  constructor(private readonly limitBytes: number) {}

  /** Whether the buffered answers have used up the budget. */
  full(): boolean {
    return this.bytes >= this.limitBytes;
  }

  /** Counts an answer of `bytes` until its connection has delivered it or closed. */
  hold(c: Context, bytes: number): void {
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (!outgoing) return; // in-process requests (tests) have no connection to wait for
    this.bytes += bytes;
    const deadline = setTimeout(() => outgoing.destroy(), DELIVERY_DEADLINE_MS);
    deadline.unref();
    outgoing.once('close', () => {
      clearTimeout(deadline);
      this.bytes -= bytes;
    });
  }
}
