/** Prometheus metrics (prom-client), one registry per server so several servers can share a process in tests. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Store } from "../store/index.js";
import { QUOTA_LIMITS, type QuotaGuard } from "../turns/quotas.js";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"route" | "method" | "status">;
  httpErrors: Counter<"route" | "code">;
  activeSubscriptions: Gauge;
}

export function createMetrics(store: Store, defaults = true, quotas?: QuotaGuard): Metrics {
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
  return { registry, httpRequests, httpErrors, activeSubscriptions };
}
