/**
 * The TypeScript engine against the Python reference (models/toolkit), on the committed
 * unipic-tiny graphs: one MAR iteration to 1e-4, whole generate and edit runs replaying the
 * reference's random draws to 1e-3 on the final latents, understanding to the same tokens.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runIteration } from "../../src/engine/mar.js";
import { ImageJob } from "../../src/engine/image-job.js";
import { Model } from "../../src/engine/model.js";
import { replayDraws } from "../../src/engine/rng.js";
import type { CfgSchedule, ImageParams } from "../../src/engine/types.js";
import { UnderstandJob } from "../../src/engine/understand-job.js";
import { MODEL_DIR, f32, fixture, maxAbsDiff, maxRelDiff, u8, type B64Tensor } from "./fixtures.js";

let model: Model;
beforeAll(async () => {
  model = await Model.load(MODEL_DIR, { provider: "cpu", threads: 1 });
});
afterAll(async () => {
  await model?.release();
});

function imageParams(p: Record<string, unknown>, seed = 0): ImageParams {
  return { steps: p.steps as number, cfg: p.cfg as number, cfgSchedule: p.cfgSchedule as CfgSchedule, temperature: p.temperature as number, diffusionSteps: p.diffusionSteps as number, seed, resolution: 64, preview: "none", previewEvery: 1 };
}

/** Rows [b*n, (b+1)*n) of every recorded normal draw: image b's share of a batched reference run. */
function imageDraws(orders: number[][][], normals: B64Tensor[], b: number, B: number): ReturnType<typeof replayDraws> {
  const perImage = normals.map((t) => {
    const all = f32(t);
    const share = all.length / B;
    return all.slice(b * share, (b + 1) * share);
  });
  return replayDraws([Int32Array.from(orders[0]![b]!)], perImage);
}

describe("parity with the Python reference sampler", () => {
  it("tokenizes the chat prompts to the same ids", () => {
    const fx = fixture("mar_iteration");
    expect(model.tokenizer.chat("Generate an image: a red circle")).toEqual(fx.prompt_ids[0]);
    expect(model.tokenizer.chat("Generate an image.")).toEqual(fx.prompt_ids[1].slice(0, 12));
  });

  it("one MAR iteration: encoder, LLM over the cached prompt, decoder, diffusion (1e-4)", async () => {
    const fx = fixture("mar_iteration");
    const params = imageParams({ steps: fx.steps, cfg: fx.diffusion.cfg, cfgSchedule: "constant", temperature: fx.diffusion.temperature, diffusionSteps: fx.diffusion.steps });
    const normals = fx.diffusion.normals.map((t: B64Tensor) => f32(t));
    const job = await ImageJob.generate(model, "a red circle", params, replayDraws([Int32Array.from(fx.order)], normals));
    job.step = fx.step;
    expect([...job.current.visible]).toEqual(fx.vis_idx);
    expect([...job.current.predict]).toEqual(fx.pred_idx);
    const visible = f32(fx.visible_latents);
    fx.vis_idx.forEach((p: number, i: number) => job.tokens.set(visible.subarray(i * 16, (i + 1) * 16), p * 16));

    // Stage by stage, through the batched path with one job.
    const { latents, visIdx } = job.encoderInput();
    const enc = await model.marEncode(job.res, latents, visIdx, 2, fx.vis_idx.length);
    expect(maxAbsDiff(enc.xEnc, f32(fx.x_enc))).toBeLessThan(1e-4);
    expect(maxAbsDiff(enc.llmIn, f32(fx.llm_in))).toBeLessThan(1e-4);
    const z = f32(fx.z);
    await runIteration(model, [job]);
    const revealed = f32(fx.diffusion.revealed);
    const got = new Float32Array(revealed.length);
    fx.pred_idx.forEach((p: number, i: number) => got.set(job.tokens.subarray(p * 16, (p + 1) * 16), i * 16));
    expect(maxRelDiff(got, revealed)).toBeLessThan(1e-4);
    expect(z.length).toBe(2 * 2 * 128);
  });

  it("whole generate runs, each image of the reference's batch as its own job (1e-3 on latents)", async () => {
    const fx = fixture("run_generate");
    const tokens = f32(fx.tokens); // [B, L, C]
    const B = fx.prompts.length;
    for (let b = 0; b < B; b++) {
      const job = await ImageJob.generate(model, fx.prompts[b], imageParams(fx.params), imageDraws(fx.draws.orders, fx.draws.normals, b, B));
      while (!job.done) await runIteration(model, [job]);
      const ref = tokens.subarray(b * 64 * 16, (b + 1) * 64 * 16);
      expect(maxRelDiff(job.tokens, ref), `image ${b}`).toBeLessThan(1e-3);
    }
  });

  it("a whole edit run with the linear CFG schedule (1e-3 on latents)", async () => {
    const fx = fixture("run_edit");
    const source = { rgb: u8(fx.source_image), width: 64, height: 64 };
    const job = await ImageJob.edit(model, source, fx.instructions[0], imageParams(fx.params), imageDraws(fx.draws.orders, fx.draws.normals, 0, 1));
    while (!job.done) await runIteration(model, [job]);
    expect(maxRelDiff(job.tokens, f32(fx.tokens))).toBeLessThan(1e-3);
  });

  it("understanding returns the same greedy tokens", async () => {
    const fx = fixture("run_understand");
    const job = await UnderstandJob.create(model, { rgb: u8(fx.source_image), width: 64, height: 64 }, fx.question, [], { maxTokens: fx.max_new_tokens, resolution: 64 });
    while (!job.done) await job.next();
    const eos = model.tokenizer.eosId;
    expect(job.ids).toEqual(fx.generated_ids.filter((id: number) => id !== eos));
  });
});
