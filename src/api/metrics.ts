/** Prometheus metrics (prom-client), one registry per server so several servers can share a process in tests. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Store } from "../store/index.js";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"route" | "method" | "status">;
  httpErrors: Counter<"route" | "code">;
  activeSubscriptions: Gauge;
}

export function createMetrics(store: Store, defaults = true): Metrics {
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
  return { registry, httpRequests, httpErrors, activeSubscriptions };
}
