/**
 * A rate-limit store that prefers the shared one (Redis) and falls back to this instance's own
 * memory while the shared one fails or is slow: limits stay per instance during an outage
 * instead of every request hanging or failing.
 */
import { MemoryStore, type Store } from 'hono-rate-limiter';

const SHARED_TIMEOUT_MS = 500;

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('rate-limit store timed out')), SHARED_TIMEOUT_MS);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error('rate-limit store failed'));
      },
    );
  });
}

export function fallbackStore(shared: Store, onFailure: () => void): Store {
  const local = new MemoryStore();
  const attempt = async <T>(useShared: () => T | Promise<T>, useLocal: () => T | Promise<T>): Promise<T> => {
    try {
      return await withTimeout(Promise.resolve(useShared()));
    } catch {
      onFailure();
      return useLocal();
    }
  };
  return {
    init(options) {
      shared.init?.(options);
      local.init(options);
    },
    increment: (key) => attempt(() => shared.increment(key), () => local.increment(key)),
    decrement: (key) => attempt(() => shared.decrement(key), () => local.decrement(key)),
    resetKey: (key) => attempt(() => shared.resetKey(key), () => local.resetKey(key)),
  };
}
