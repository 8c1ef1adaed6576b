import { describe, expect, it } from "vitest";
import { JobQueue } from "../../src/engine/queue.js";

const job = (id: string, user: string, priority = 0) => ({ id, user, priority });

describe("job queue", () => {
  it("takes the highest priority first, then users in turn, FIFO within a user", () => {
    const q = new JobQueue<ReturnType<typeof job>>(10);
    for (const j of [job("a1", "alice"), job("a2", "alice"), job("a3", "alice"), job("b1", "bob"), job("c1", "carol", 5), job("b2", "bob")]) q.push(j);
    expect(Object.fromEntries(q.positions())).toEqual({ c1: 0, a1: 1, b1: 2, a2: 3, b2: 4, a3: 5 });
    const order: string[] = [];
    while (q.length > 0) order.push(q.shift()!.id);
    expect(order).toEqual(["c1", "a1", "b1", "a2", "b2", "a3"]);
  });

  it("remembers who was served, so a newcomer goes before a user just served", () => {
    const q = new JobQueue<ReturnType<typeof job>>(10);
    q.push(job("a1", "alice"));
    q.push(job("a2", "alice"));
    expect(q.shift()!.id).toBe("a1");
    q.push(job("b1", "bob"));
    expect(q.shift()!.id).toBe("b1");
  });

  it("is bounded: QUEUE_FULL at once, and removal frees a place", () => {
    const q = new JobQueue<ReturnType<typeof job>>(2);
    q.push(job("1", "u"));
    q.push(job("2", "u"));
    expect(() => q.push(job("3", "u"))).toThrow(expect.objectContaining({ code: "QUEUE_FULL" }));
    expect(q.remove("1")?.id).toBe("1");
    q.push(job("3", "u"));
    expect(q.positions().get("3")).toBe(1);
  });
});
