/**
 * The quota guard alone, with a fake store and clock: the per-minute window slides, retry hints
 * say when a request would pass, admins are exempt, and one user's concurrent admissions cannot
 * slip past a limit together. (test/api/quotas.test.ts checks the limits at the API.)
 */
import { describe, expect, it } from "vitest";
import type { Quotas } from "../../src/config.js";
import type { UserRow } from "../../src/store/index.js";
import { QuotaGuard } from "../../src/turns/quotas.js";

const user = (id: string, isAdmin = false): UserRow => ({ id, name: id, isAdmin, createdAt: new Date(0) });

function guard(quotas: Partial<Quotas>, state: { active?: number; held?: number; visible?: boolean; jobMs?: number | null } = {}) {
  let now = 1_000_000;
  const g = new QuotaGuard({
    quotas: { turnsPerMinute: 0, queuedTurns: 0, storedBytes: 0, ...quotas },
    store: {
      turns: { activeCount: async () => state.active ?? 0 } as never,
      images: { bytesHeldBy: async () => state.held ?? 0, visibleTo: async () => state.visible ?? false } as never,
    },
    jobMs: () => state.jobMs ?? null,
    now: () => now,
  });
  return { g, state, advance: (ms: number) => (now += ms) };
}

const ok = async () => "stored";

describe("QuotaGuard", () => {
  it("turns per minute: a sliding window, with the wait until enough places free", async () => {
    const { g, advance } = guard({ turnsPerMinute: 3 });
    const alice = user("alice");
    await g.admitTurns(alice, 1, true, ok);
    advance(10_000);
    await g.admitTurns(alice, 2, true, ok);
    const refused = await g.admitTurns(alice, 1, true, ok).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 50_000 }); // the first leaves the window at 60 s
    // Two more need both of the second request's places: 60 s after it.
    expect(await g.admitTurns(alice, 2, true, ok).catch((e: unknown) => e)).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 60_000 });
    advance(50_000);
    expect(await g.admitTurns(alice, 1, true, ok)).toBe("stored");
    expect(g.refusals).toEqual({ turns_per_minute: 2, queued_turns: 0, stored_bytes: 0 });
    // Other users have windows of their own; admins have none.
    expect(await g.admitTurns(user("bob"), 3, true, ok)).toBe("stored");
    for (let i = 0; i < 10; i++) await g.admitTurns(user("root", true), 4, true, ok);
  });

  it("counts a refused or failed request as nothing", async () => {
    const { g } = guard({ turnsPerMinute: 2 });
    const alice = user("alice");
    await expect(g.admitTurns(alice, 1, true, async () => Promise.reject(new Error("store down")))).rejects.toThrow("store down");
    await g.admitTurns(alice, 2, true, ok);
    await expect(g.admitTurns(alice, 1, true, ok)).rejects.toMatchObject({ code: "RATE_LIMITED" });
  });

  it("more replies in one request than a limit allows at all is LIMIT_EXCEEDED, not a wait", async () => {
    const { g } = guard({ turnsPerMinute: 2, queuedTurns: 8 });
    await expect(g.admitTurns(user("alice"), 3, true, ok)).rejects.toMatchObject({ code: "LIMIT_EXCEEDED", field: "replies" });
    const q = guard({ queuedTurns: 2 }).g;
    await expect(q.admitTurns(user("alice"), 3, true, ok)).rejects.toMatchObject({ code: "LIMIT_EXCEEDED", field: "replies" });
  });

  it("queued turns at once: refused while the user's turns wait, with a retry hint of a job's measured time", async () => {
    const { g, state } = guard({ queuedTurns: 2 }, { active: 2 });
    const alice = user("alice");
    expect(await g.admitTurns(alice, 1, true, ok).catch((e: unknown) => e)).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 1000 });
    state.jobMs = 420;
    expect(await g.admitTurns(alice, 2, false, ok).catch((e: unknown) => e)).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 840 });
    state.active = 1;
    expect(await g.admitTurns(alice, 1, true, ok)).toBe("stored");
    expect(await g.admitTurns(user("root", true), 4, true, ok)).toBe("stored");
  });

  it("stored bytes: no new images once the allowance is used, questions still pass; uploads must fit", async () => {
    const { g, state } = guard({ storedBytes: 1000 }, { held: 1000 });
    const alice = user("alice");
    const full = await g.admitTurns(alice, 1, true, ok).catch((e: unknown) => e);
    expect(full).toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: null });
    expect(await g.admitTurns(alice, 1, false, ok)).toBe("stored"); // understanding stores no image
    state.held = 900;
    expect(await g.admitTurns(alice, 1, true, ok)).toBe("stored");
    await expect(g.admitUpload(alice, "img", 101, ok)).rejects.toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: null });
    expect(await g.admitUpload(alice, "img", 100, ok)).toBe("stored");
    state.visible = true; // already held: counted once, so it fits whatever its size
    expect(await g.admitUpload(alice, "img", 10_000, ok)).toBe("stored");
    expect(await g.admitUpload(user("root", true), "img", 1 << 30, ok)).toBe("stored");
    expect(g.refusals.stored_bytes).toBe(2);
  });

  it("serialises one user's admissions, so concurrent requests cannot pass a limit together", async () => {
    const { g, state } = guard({ queuedTurns: 3 }, { active: 0 });
    const alice = user("alice");
    // Each store takes a while and adds its turn, as the real store does.
    const store = async () => {
      await new Promise((r) => setTimeout(r, 5));
      state.active = (state.active ?? 0) + 1;
      return "stored";
    };
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => g.admitTurns(alice, 1, true, store)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(3);
    expect(results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(["RATE_LIMITED", "RATE_LIMITED", "RATE_LIMITED"]);
  });
});
