/**
 * The server's audit log: pino JSON lines, one per request and one per security event. Secrets
 * (authorization headers, API keys, cookies) are redacted by path and never passed in the first
 * place; notebook content is never logged, only its size, hash and a sanitised name.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

export type AuditLogger = Logger;

export interface AuditLogOptions {
  /** Append to this file instead of stdout. */
  readonly file?: string | null;
  /** A destination stream (tests collect lines with it). */
  readonly stream?: DestinationStream;
  readonly level?: string;
}

export function createAuditLog(options: AuditLogOptions = {}): AuditLogger {
  const destination = options.stream ?? pino.destination({ dest: options.file ?? 1, sync: false, mkdir: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: 'nbsandbox' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['authorization', 'cookie', 'apiKey', 'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** Writes what is buffered; called on shutdown so that no line is lost. */
export function flushAuditLog(logger: AuditLogger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()));
}
