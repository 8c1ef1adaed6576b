/** Prometheus metrics (prom-client), one registry per server so several servers can share a process in tests. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Store } from "../store/index.js";
import type { QueueStats } from "../turns/queue.js";
import { QUOTA_LIMITS, type QuotaGuard } from "../turns/quotas.js";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"route" | "method" | "status">;
  httpErrors: Counter<"route" | "code">;
  activeSubscriptions: Gauge;
}

/** What the hub gauges read: live subscribers and topics of one event hub (src/turns/events.ts). */
export interface HubStats {
  readonly size: number;
  readonly topicCount: number;
}

export function createMetrics(store: Store, defaults = true, quotas?: QuotaGuard, queue?: QueueStats | null, hubs?: Record<"turn" | "conversation", HubStats>): Metrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry });
  const httpRequests = new Counter({
    name: "unipic_http_requests_total",
    help: "HTTP requests by route, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [registry],
  });
  const httpErrors = new Counter({
    name: "unipic_http_errors_total",
    help: "HTTP requests answered with an error, by route and error code.",
    labelNames: ["route", "code"] as const,
    registers: [registry],
  });
  const activeSubscriptions = new Gauge({
    name: "unipic_active_subscriptions",
    help: "GraphQL subscriptions open over WebSocket.",
    registers: [registry],
  });
  new Gauge({
    name: "unipic_turns",
    help: "Turns by status, read from the database at scrape time.",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      const counts = await store.turns.countByStatus();
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  if (quotas !== undefined) {
    new Counter({
      name: "unipic_quota_refusals_total",
      help: "Requests refused by a per-user quota or rate limit (RATE_LIMITED, QUOTA_EXCEEDED), by limit.",
      labelNames: ["limit"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const limit of QUOTA_LIMITS) this.inc({ limit }, quotas.refusals[limit]);
      },
    });
    const configured = { turns_per_minute: quotas.limits.turnsPerMinute, queued_turns: quotas.limits.queuedTurns, stored_bytes: quotas.limits.storedBytes };
    const limitGauge = new Gauge({
      name: "unipic_quota_limit",
      help: "Each per-user limit as configured (0: off); admins are exempt.",
      labelNames: ["limit"] as const,
      registers: [registry],
    });
    for (const limit of QUOTA_LIMITS) limitGauge.set({ limit }, configured[limit]);
  }
  if (hubs !== undefined) hubMetrics(registry, hubs);
  if (queue !== undefined && queue !== null) queueMetrics(registry, queue);
  return { registry, httpRequests, httpErrors, activeSubscriptions };
}

/**
 * The in-process event hubs: a subscriber or topic that outlives its client is a leak, so after
 * load both return to what the open subscriptions explain (the soak bench reads them).
 */
function hubMetrics(registry: Registry, hubs: Record<"turn" | "conversation", HubStats>): void {
  const gauges: Array<[name: string, help: string, read: (stats: HubStats) => number]> = [
    ["unipic_hub_subscribers", "Live subscribers of this process's event hubs, by hub (turn, conversation).", (stats) => stats.size],
    ["unipic_hub_topics", "Topics (turns, conversations) with a live subscriber in this process's event hubs, by hub.", (stats) => stats.topicCount],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      labelNames: ["hub"] as const,
      registers: [registry],
      collect() {
        for (const [hub, stats] of Object.entries(hubs)) this.set({ hub }, read(stats));
      },
    });
  }
}

/** Scaled out: the shared queue and its workers, read from Redis at scrape time. */
function queueMetrics(registry: Registry, queue: QueueStats): void {
  new Gauge({
    name: "unipic_queue_depth",
    help: "Jobs waiting in the shared queue (Redis).",
    registers: [registry],
    async collect() {
      const depth = await queue.depth();
      this.set(depth ?? NaN); // NaN: unknown while Redis is away, rather than a stale or false count
    },
  });
  new Gauge({
    name: "unipic_worker_jobs",
    help: "Jobs per live engine worker: held now (active) and finished since it started (done).",
    labelNames: ["worker", "state"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const w of (await queue.workers()) ?? []) {
        this.set({ worker: w.id, state: "active" }, w.active);
        this.set({ worker: w.id, state: "done" }, w.done);
      }
    },
  });
  new Gauge({
    name: "unipic_workers_alive",
    help: "Engine workers that reported within the last 10 s.",
    registers: [registry],
    async collect() {
      const workers = await queue.workers();
      this.set(workers?.length ?? NaN);
    },
  });
  new Counter({
    name: "unipic_stalled_job_recoveries_total",
    help: "Jobs put back in the queue after their worker stopped answering (killed, frozen).",
    registers: [registry],
    async collect() {
      const recovered = await queue.stalledRecoveries();
      if (recovered === null) return; // unknown while Redis is away: keep the last count
      this.reset();
      this.inc(recovered);
    },
  });
}
