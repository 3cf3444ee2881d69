/**
 * Prometheus metrics for `/metrics`: requests by route and status, the sandbox pool and run
 * queue, the checker's verdict cache, and the Node process itself. Pool and cache values are
 * read when scraped, so they are never stale and cost nothing between scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Checker } from '../check/checker.js';
import type { Sandbox } from '../sandbox/sandbox.js';

export interface MetricsSources {
  readonly sandbox: Sandbox;
  readonly checker: Checker;
  /** The server's answer cache for repeated check bodies. */
  readonly answers: () => { readonly hits: number; readonly misses: number; readonly entries: number };
}

export interface Metrics {
  readonly contentType: string;
  render(): Promise<string>;
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nbsandbox_' });

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  const total = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });

  const pool = () => sources.sandbox.stats();
  gauge('nbsandbox_sandbox_pool_size', 'Warm sandbox processes the pool keeps', () => pool().poolSize);
  gauge('nbsandbox_sandbox_warm', 'Warm sandbox processes not yet handed out, starting or ready', () => pool().warm);
  gauge('nbsandbox_sandbox_ready', 'Warm sandbox processes ready to run at once', () => pool().ready);
  gauge('nbsandbox_sandbox_running', 'Runs executing now', () => pool().running);
  gauge('nbsandbox_sandbox_queued', 'Runs waiting for a sandbox slot', () => pool().queued);
  gauge('nbsandbox_sandbox_snapshot_start', '1 when sandbox processes restore the start-up snapshot, 0 when they start plain', () =>
    pool().startMode === 'snapshot' ? 1 : 0,
  );
  total('nbsandbox_sandbox_processes_started_total', 'Sandbox processes started', () => pool().started);
  gauge('nbsandbox_sandbox_start_failures_in_a_row', 'Warm sandbox start-ups that failed since the last one that worked', () => pool().startFailuresInARow);
  total('nbsandbox_sandbox_warm_failures_total', 'Warm sandbox processes that failed to start or died before use', () => pool().failedWarm);
  gauge('nbsandbox_runs_admitted', 'Runs executing or waiting in the sandbox queue', () => {
    const { running, queued } = sources.sandbox.stats();
    return running + queued;
  });
  total('nbsandbox_check_cache_hits_total', 'Checks answered from the verdict cache', () => sources.checker.cacheStats().hits);
  total('nbsandbox_check_cache_misses_total', 'Checks the verdict cache could not answer', () => sources.checker.cacheStats().misses);
  gauge('nbsandbox_check_cache_entries', 'Verdicts held in the cache', () => sources.checker.cacheStats().entries);
  total('nbsandbox_check_answer_cache_hits_total', 'Check requests answered from the bytes of a body seen before', () => sources.answers().hits);
  gauge('nbsandbox_check_answer_cache_entries', 'Answers held for repeated check bodies', () => sources.answers().entries);

  const requests = new Counter({
    name: 'nbsandbox_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'nbsandbox_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });

  // Label children looked up once per label set: prom-client hashes the label object on every call.
  const requestChildren = new Map<string, Counter.Internal>();
  const durationChildren = new Map<string, Histogram.Internal<'route'>>();
  return {
    contentType: registry.contentType,
    render: () => registry.metrics(),
    observeRequest(method, route, status, seconds) {
      const key = `${method} ${status} ${route}`;
      let counter = requestChildren.get(key);
      if (!counter) requestChildren.set(key, (counter = requests.labels({ method, route, status: String(status) })));
      counter.inc();
      let histogram = durationChildren.get(route);
      if (!histogram) durationChildren.set(route, (histogram = durations.labels({ route })));
      histogram.observe(seconds);
    },
  };
}
