/**
 * Request bodies the server will not read, handled so that clients get the answer instead of
 * a reset connection. Many clients (Python's urllib, most scripts) send the whole body before
 * reading anything, and ask to close the connection after the response; if the server closes
 * while they are still sending, they see a broken pipe, never the documented 413.
 *
 * - The response is sent as soon as the application has it (a 413 from the Content-Length at
 *   once); the connection stays open after it while the rest of the body is read and thrown
 *   away, up to a bound of bytes and time, and then closes if the client asked it to. Past the
 *   bound the connection is closed at once, as nginx's lingering close does.
 * - A client that asked `Expect: 100-continue` for a body over the limit is answered without
 *   ever being asked for the body.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from 'node:http';

export interface BodyLimits {
  /** Largest body the application reads. */
  readonly bodyLimit: number;
  /** Bytes thrown away per request before the connection is closed. */
  readonly maxDiscardBytes: number;
  /** Time allowed for the rest of a body to arrive. */
  readonly maxDiscardMs: number;
}

function declaredLength(incoming: IncomingMessage): number | null {
  const header = incoming.headers['content-length'];
  return header !== undefined && /^\d+$/.test(header) ? Number(header) : null;
}

/** Reads what is left of the body and throws it away; `then` runs once it has all arrived. */
function discardBody(incoming: IncomingMessage, limits: BodyLimits, then?: () => void): void {
  if (incoming.readableEnded || incoming.destroyed) {
    then?.();
    return;
  }
  let bytes = 0;
  const close = () => {
    clearTimeout(timer);
    incoming.socket?.destroy();
  };
  const timer = setTimeout(close, limits.maxDiscardMs);
  timer.unref();
  // A web stream the body was wrapped in (read or not) pauses the request when its own queue
  // is full; its listener goes, so only the discarding one remains.
  incoming.removeAllListeners('data');
  incoming.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes > limits.maxDiscardBytes) close();
  });
  incoming.once('end', () => {
    clearTimeout(timer);
    then?.();
  });
  incoming.once('close', () => clearTimeout(timer));
  incoming.resume();
}

function hasBody(incoming: IncomingMessage): boolean {
  return (declaredLength(incoming) ?? 0) > 0 || incoming.headers['transfer-encoding'] !== undefined;
}

/** An HTTP server for `listener` whose unread request bodies are handled as described above. */
export function boundedBodyServer(options: ServerOptions, listener: RequestListener, limits: BodyLimits): Server {
  const server = createServer(options, (incoming, outgoing) => {
    if (hasBody(incoming)) {
      // Closing right after the response would cut off a client still sending its body: the
      // connection stays open while the rest is thrown away, then closes if the client asked.
      const clientWantsClose = !outgoing.shouldKeepAlive;
      outgoing.shouldKeepAlive = true;
      outgoing.once('finish', () =>
        discardBody(incoming, limits, () => {
          if (clientWantsClose) incoming.socket?.end();
        }),
      );
    }
    void listener(incoming, outgoing);
  });
  server.on('checkContinue', (incoming: IncomingMessage, outgoing: ServerResponse) => {
    if ((declaredLength(incoming) ?? 0) > limits.bodyLimit) {
      // The client waits for our word before sending the body: refuse it without ever reading it.
      outgoing.shouldKeepAlive = false;
      void listener(incoming, outgoing);
      return;
    }
    outgoing.writeContinue();
    server.emit('request', incoming, outgoing);
  });
  return server;
}
