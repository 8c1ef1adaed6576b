/**
 * EnginePool on the committed unipic-tiny graphs: two worker threads (and one, below) behind
 * one queue. Jobs spread over both, give the bytes they give alone, and keep the queue's
 * guarantees (positions, QUEUE_FULL, cancellation of waiting and running jobs).
 */
import type { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { EnginePool } from "../../src/engine/pool.js";
import { RemoteEngine, startEngineThread } from "../../src/engine/remote.js";
import type { JobEvent, JobHandle } from "../../src/engine/types.js";
import { collect } from "../helpers/collect.js";
import { MODEL_DIR, gen } from "./fixtures.js";

const FAST = { steps: 4, diffusionSteps: 5 };
let pool: EnginePool;
let alone: Engine;
/** The first worker's thread, kept from its start, to report a crash of it (the last test). */
let firstThread: Worker;

beforeAll(async () => {
  const options = { modelDir: MODEL_DIR, provider: "cpu" as const, threads: 1, maxQueue: 2, maxBatch: 2 };
  // As EnginePool.load(options, 2) builds it (each worker takes one batch), keeping a thread.
  const first = await RemoteEngine.load(options, (data) => (firstThread = startEngineThread(data)));
  pool = new EnginePool([first, await RemoteEngine.load(options)], options.maxBatch, options.maxQueue);
  alone = await Engine.load({ ...options, maxQueue: 8 });
});
afterAll(async () => {
  await pool?.close();
  await alone?.close();
});

const image = (events: JobEvent[]): Buffer => {
  const last = events.at(-1);
  if (last?.type !== "done") throw new Error(`no done event: ${events.map((e) => e.type).join(",")}`);
  return Buffer.from(last.image!.rgb);
};

describe("engine pool", () => {
  it("spreads jobs over the workers, queues the rest in order, and each job gives its bytes run alone", async () => {
    expect(pool.ready).toBe(true);
    const handles: JobHandle[] = Array.from({ length: 6 }, (_, i) => pool.submit(gen("a red circle", { ...FAST, seed: 30 + i })));
    expect(pool.activeJobs).toEqual([2, 2]); // 2 workers x batch 2 running, 2 waiting
    expect(handles.map((h) => pool.queuePosition(h.id))).toEqual([null, null, null, null, 0, 1]);
    const events = await Promise.all(handles.map((h) => collect(h.events)));
    const queued = events[5]!.filter((e) => e.type === "queued").map((e) => (e as { position: number }).position);
    expect(queued[0]).toBe(1);
    expect(queued.at(-1)).toBe(0); // moved up before it started
    for (let i = 0; i < 6; i++) {
      const ref = await collect(alone.submit(gen("a red circle", { ...FAST, seed: 30 + i })).events);
      expect(image(events[i]!).equals(image(ref)), `job ${i}`).toBe(true);
    }
    expect(pool.activeJobs).toEqual([0, 0]);
  });

  it("is full when its own queue is (QUEUE_FULL), and cancels waiting and running jobs", async () => {
    const running = Array.from({ length: 4 }, (_, i) => pool.submit(gen("a blue square", { ...FAST, seed: i })));
    const waiting = [pool.submit(gen("a blue square", { ...FAST, seed: 8 })), pool.submit(gen("a blue square", { ...FAST, seed: 9 }))];
    expect(() => pool.submit(gen("a blue square", FAST))).toThrow(expect.objectContaining({ code: "QUEUE_FULL" }));
    waiting[0]!.cancel();
    running[0]!.cancel();
    await expect(collect(waiting[0]!.events)).rejects.toMatchObject({ code: "CANCELLED" });
    await expect(collect(running[0]!.events)).rejects.toMatchObject({ code: "CANCELLED" });
    await Promise.all([...running.slice(1), waiting[1]!].map((h) => collect(h.events)));
    expect(pool.activeJobs).toEqual([0, 0]);
  });

  it("sends each worker a full batch even when the waiting queue is shorter than a batch", async () => {
    const small = await EnginePool.load({ modelDir: MODEL_DIR, provider: "cpu", threads: 1, maxQueue: 1, maxBatch: 3 }, 2);
    try {
      const jobs = Array.from({ length: 7 }, (_, i) => small.submit(gen("a red circle", { ...FAST, seed: i })));
      expect(jobs.map((h) => small.queuePosition(h.id))).toEqual([null, null, null, null, null, null, 0]);
      expect(() => small.submit(gen("a red circle", FAST))).toThrow(expect.objectContaining({ code: "QUEUE_FULL" }));
      const ends = await Promise.all(jobs.map(async (h) => (await collect(h.events)).at(-1)?.type));
      expect(ends).toEqual(Array(7).fill("done"));
    } finally {
      await small.close();
    }
  });

  it("is a pool of one with one worker: the queue, its positions and QUEUE_FULL are the pool's", async () => {
    const one = await EnginePool.load({ modelDir: MODEL_DIR, provider: "cpu", threads: 1, maxQueue: 2, maxBatch: 1 }, 1);
    try {
      const jobs = Array.from({ length: 3 }, (_, i) => one.submit(gen("a red circle", { ...FAST, seed: i })));
      expect(jobs.map((h) => one.queuePosition(h.id))).toEqual([null, 0, 1]);
      expect(() => one.submit(gen("a red circle", FAST))).toThrow(expect.objectContaining({ code: "QUEUE_FULL" }));
      const ends = await Promise.all(jobs.map(async (h) => (await collect(h.events)).at(-1)?.type));
      expect(ends).toEqual(["done", "done", "done"]);
    } finally {
      await one.close();
    }
  });

  it("checks parameters at submit", () => {
    expect(() => pool.submit(gen("a red circle", { steps: 0 }))).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
  });

  // Last: it breaks the pool.
  it("turns not ready when a worker dies: that worker's jobs fail ENGINE_DEAD, new jobs are refused", async () => {
    const jobs = Array.from({ length: 4 }, (_, i) => pool.submit(gen("a red circle", { steps: 16, diffusionSteps: 25, seed: i })));
    // The worker thread reports a crash. (Terminating a thread while it is inside onnxruntime's
    // native code aborts the whole process, so the crash is signalled, not caused.)
    firstThread.emit("error", new Error("simulated crash"));
    const results = await Promise.allSettled(jobs.map((h) => collect(h.events)));
    const codes = results.map((r) => (r.status === "rejected" ? (r.reason as { code: string }).code : "DONE"));
    expect(codes.filter((c) => c === "ENGINE_DEAD").length).toBe(2); // the dead worker's two
    expect(codes.filter((c) => c === "DONE").length).toBe(2); // the other worker finished its own
    expect(pool.ready).toBe(false);
    expect(() => pool.submit(gen("a red circle", FAST))).toThrow(expect.objectContaining({ code: "ENGINE_DEAD" }));
  });
});
