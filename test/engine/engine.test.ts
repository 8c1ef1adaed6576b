/**
 * The engine loop on the committed unipic-tiny graphs: determinism, batching, previews,
 * cancellation, failure isolation and a dead session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import type { JobEvent, JobRequest, RgbTensor } from "../../src/engine/types.js";
import { collect } from "../helpers/collect.js";
import { MODEL_DIR, ask, edit, gen } from "./fixtures.js";

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load({ modelDir: MODEL_DIR, provider: "cpu", threads: 1, maxQueue: 6, maxBatch: 4 });
});
afterAll(async () => {
  await engine?.close();
});

const run = (request: JobRequest): Promise<JobEvent[]> => collect(engine.submit(request).events);

function done(events: JobEvent[]): Extract<JobEvent, { type: "done" }> {
  const last = events.at(-1);
  if (last?.type !== "done") throw new Error(`no done event: ${JSON.stringify(events.map((e) => e.type))}`);
  return last;
}

const FAST = { steps: 4, diffusionSteps: 5 };

describe("engine", () => {
  it("gives the same bytes for the same seed, and different ones for another seed", async () => {
    const a = done(await run(gen("a red circle", { ...FAST, seed: 11 })));
    const b = done(await run(gen("a red circle", { ...FAST, seed: 11 })));
    const c = done(await run(gen("a red circle", { ...FAST, seed: 12 })));
    expect(Buffer.from(a.image!.rgb).equals(Buffer.from(b.image!.rgb))).toBe(true);
    expect(Buffer.from(a.latents!.buffer).equals(Buffer.from(b.latents!.buffer))).toBe(true);
    expect(Buffer.from(a.image!.rgb).equals(Buffer.from(c.image!.rgb))).toBe(false);
    expect(a.image).toMatchObject({ width: 64, height: 64 });
  });

  it("gives each job the same bytes batched with others as alone", async () => {
    // Prompts of different lengths, so the batched LLM pads some prompt caches.
    const prompts = ["a red circle", "a red circle and a blue square", "three green triangles", "a yellow square left of a purple circle"];
    const alone: Array<{ image: RgbTensor; latents: Float32Array }> = [];
    for (const [i, p] of prompts.entries()) {
      const d = done(await run(gen(p, { ...FAST, seed: 100 + i })));
      alone.push({ image: d.image!, latents: d.latents! });
    }
    const together = await Promise.all(prompts.map((p, i) => run(gen(p, { ...FAST, seed: 100 + i }))));
    let worstPixel = 0;
    let identicalLatents = 0;
    together.forEach((events, i) => {
      const d = done(events);
      for (let k = 0; k < d.image!.rgb.length; k++) worstPixel = Math.max(worstPixel, Math.abs(d.image!.rgb[k]! - alone[i]!.image.rgb[k]!));
      if (Buffer.from(d.latents!.buffer).equals(Buffer.from(alone[i]!.latents.buffer))) identicalLatents++;
    });
    // Identical bytes: rows of a batch are computed as alone, and only jobs with equally long
    // prompt caches share an LLM call. Pinned so a change in batching shows up here.
    expect(worstPixel).toBe(0);
    expect(identicalLatents).toBe(prompts.length);
  });

  it("streams a linear preview after every step, in order", async () => {
    const events = await run(gen("a purple circle", { ...FAST, seed: 5, preview: "linear" }));
    const steps = events.filter((e): e is Extract<JobEvent, { type: "step" }> => e.type === "step");
    expect(steps.map((s) => s.index)).toEqual([1, 2, 3, 4]);
    expect(steps.every((s) => s.preview !== null && s.preview.width === 8 && s.preview.step === s.index)).toBe(true);
    expect(events[0]).toMatchObject({ type: "queued" });
    expect(events.some((e) => e.type === "started")).toBe(true);
  });

  it("makes VAE previews at full resolution when asked", async () => {
    const events = await run(gen("a red circle", { steps: 6, diffusionSteps: 5, seed: 5, preview: "vae", previewEvery: 2 }));
    const vae = events.filter((e) => e.type === "step" && e.preview?.kind === "vae");
    expect(vae.length).toBeGreaterThanOrEqual(1);
    expect((vae[0] as Extract<JobEvent, { type: "step" }>).preview).toMatchObject({ width: 64, height: 64 });
  });

  it("edits and understands", async () => {
    const image = done(await run(gen("a red circle", { ...FAST, seed: 1 }))).image!;
    const edited = done(await run(edit(image, "make the circle blue", { ...FAST, seed: 2 })));
    expect(edited.image!.rgb.length).toBe(64 * 64 * 3);
    const answer = await run(ask(image, "what color is the circle?", { maxTokens: 3 }));
    const tokens = answer.filter((e) => e.type === "token");
    expect(tokens.length).toBeGreaterThan(0);
    expect(done(answer).text).toBe(tokens.map((t) => (t as { delta: string }).delta).join(""));
  });

  it("cancels between steps and frees the place at once", async () => {
    const handle = engine.submit(gen("a red circle", { steps: 30, diffusionSteps: 5, seed: 3 }));
    const seen: string[] = [];
    const outcome = collect(handle.events, {
      onItem: (e) => {
        seen.push(e.type);
        if (e.type === "step" && e.index === 2) handle.cancel();
      },
    });
    await expect(outcome).rejects.toMatchObject({ code: "CANCELLED" });
    expect(seen.filter((t) => t === "step").length).toBeLessThanOrEqual(3);
    expect(engine.queuePosition(handle.id)).toBeNull();
  });

  it("refuses work beyond the queue's capacity at once, with QUEUE_FULL", async () => {
    const handles = [];
    let error: { code?: string } | undefined;
    try {
      for (let i = 0; i < 20; i++) handles.push(engine.submit(gen("a red circle", { ...FAST, seed: i })));
    } catch (e) {
      error = e as { code?: string };
    }
    expect(error?.code).toBe("QUEUE_FULL");
    // 4 run at once (maxBatch), 6 wait (maxQueue): the 11th submission is refused.
    expect(handles.length).toBeGreaterThanOrEqual(6);
    expect(handles.length).toBeLessThanOrEqual(10);
    for (const h of handles) h.cancel();
  });

  it("fails a bad job alone", async () => {
    const bad = run(edit({ rgb: new Uint8Array(12), width: 2, height: 2 }, "make it blue", { ...FAST, seed: 1 }));
    const good = run(gen("a red circle", { ...FAST, seed: 9 }));
    await expect(bad).rejects.toMatchObject({ code: "JOB_FAILED" });
    expect(done(await good).image).not.toBeNull();
    expect(engine.ready).toBe(true);
  });

  it("rejects parameters the model cannot use, naming the field", () => {
    expect(() => engine.submit(gen("x", { resolution: 1024 }))).toThrow(/params.resolution: expected one of 64/);
    expect(() => engine.submit(gen("x", { steps: 65 }))).toThrow(/params.steps/);
  });
});

describe("a dead session", () => {
  it("fails every job with ENGINE_DEAD and turns readiness false", async () => {
    const doomed = await Engine.load({ modelDir: MODEL_DIR, provider: "cpu", threads: 1, maxQueue: 4, maxBatch: 2 });
    done(await collect(doomed.submit(gen("a red circle", { ...FAST, seed: 1 })).events)); // known-good inputs for the probe
    const jobs = [collect(doomed.submit(gen("a red circle", { ...FAST, seed: 2 })).events), collect(doomed.submit(gen("a blue square", { ...FAST, seed: 3 })).events)];
    await doomed.model.release(); // the sessions are gone, as after a device loss
    for (const job of jobs) await expect(job).rejects.toMatchObject({ code: "ENGINE_DEAD" });
    expect(doomed.ready).toBe(false);
    expect(() => doomed.submit(gen("x"))).toThrow(/stopped working/);
  });
});

describe("execution provider", () => {
  it("falls back from webgpu to cpu with a logged reason when no adapter exists", async () => {
    const lines: string[] = [];
    const e = await Engine.load({ modelDir: MODEL_DIR, provider: "webgpu", threads: 1, maxQueue: 2, maxBatch: 1, log: (l) => lines.push(l) });
    try {
      // This machine (and CI) has no GPU adapter; on a GPU machine the provider stays webgpu.
      if (e.model.provider === "cpu") expect(lines.join("\n")).toMatch(/webgpu is not available \(.+\); falling back to cpu/);
      else expect(lines).toEqual([]);
      const events = await collect(e.submit(gen("a red circle", { steps: 2, diffusionSteps: 2, seed: 1 })).events);
      expect(events.at(-1)?.type).toBe("done");
    } finally {
      await e.close();
    }
  });
});
