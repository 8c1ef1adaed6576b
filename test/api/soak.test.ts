/**
 * A short run of `unipic bench --soak` (the 30-minute soak's load, for 20 s) against `npm start`'s
 * server in its own process, on this run's store (PGlite, or a fresh PostgreSQL database when
 * DATABASE_URL is set): once every client has gone, the server holds no subscription, hub
 * subscriber or topic for them, every failure was a coded answer, and the server is still up.
 */
import { describe, expect, it } from "vitest";
import { runSoak } from "../../src/cli/bench-soak.js";
import { loadConfig } from "../../src/config.js";

describe("soak (short)", () => {
  it("leaves nothing behind after 20 s of mixed load, and every error has a code", async () => {
    const lines: Array<Record<string, any>> = [];
    await runSoak(loadConfig(), 20 / 60, (m) => lines.push(m));
    const by = (metric: string) => lines.find((l) => l.metric === metric)!;
    expect(by("soak_leaks")).toMatchObject({ value: 0, subscriptions: 0, hub_subscribers: 0, hub_topics: 0 });
    const load = by("soak_load");
    expect(load.server_alive).toBe(true);
    expect(load.errors.unexpected ?? 0).toBe(0);
    // The load really ran: turns completed and were watched, history was paged, uploads read back.
    expect(load.value).toBeGreaterThan(0);
    expect(load.counts.previews_seen).toBeGreaterThan(0);
    expect(load.latency_ms.history_conversations.n).toBeGreaterThan(0);
    expect(load.counts.uploads_read_back).toBeGreaterThan(0);
  });
});
