/**
 * MAR's sampling loop (docs/model.md §3.3-3.5) in one place, to be read against the paper's: the plan of
 * which tokens each iteration reveals (cosine mask schedule, one random order per image), the
 * guidance scale of an iteration, and one iteration for a batch of jobs (encoder, LLM, decoder,
 * diffusion head, reveal). The engine calls runIteration once a tick until every job's plan is
 * done; how each stage batches its jobs into one session call is in stages.ts.
 */
import type { ImageJob } from "./image-job.js";
import type { Model } from "./model.js";
import { decoderStage, diffusionStage, encoderStage, llmStage, sameShape, type PerJob } from "./stages.js";
import { CfgSchedule } from "./types.js";

/** Cosine mask schedule: tokens still masked after `step`, clamped to [1, stillMasked - 1]. */
export function maskLenAfter(step: number, numIter: number, L: number, stillMasked: number): number {
  const n = Math.floor(L * Math.cos(((Math.PI / 2) * (step + 1)) / numIter));
  return Math.max(1, Math.min(stillMasked - 1, n));
}

/** Guidance scale of an iteration: constant, or Muse's linear ramp over revealed tokens. */
export function cfgScale(cfg: number, schedule: CfgSchedule, L: number, maskLen: number): number {
  return schedule === CfgSchedule.CONSTANT ? cfg : 1 + ((cfg - 1) * (L - maskLen)) / L;
}

export interface IterationPlan {
  step: number;
  /** Raster indices visible to the encoder, ascending [V]. */
  visible: Int32Array;
  /** Raster indices predicted by this iteration, ascending [n]. */
  predict: Int32Array;
  /** Tokens still masked after it (the clamped schedule value). */
  maskLen: number;
}

function sortedSlice(order: Int32Array, from: number, to: number): Int32Array {
  return order.slice(from, to).sort();
}

/**
 * The whole plan for one image. Tokens are revealed from the end of the permutation backwards:
 * after an iteration the first `maskLen` entries of the order stay masked (MAR's sample_tokens).
 */
export function planIterations(order: Int32Array, numIter: number): IterationPlan[] {
  const L = order.length;
  const plan: IterationPlan[] = [];
  let masked = L;
  for (let step = 0; step < numIter; step++) {
    const maskLen = maskLenAfter(step, numIter, L, masked);
    const last = step >= numIter - 1;
    const lo = last ? 0 : maskLen;
    plan.push({ step, visible: sortedSlice(order, masked, L), predict: sortedSlice(order, lo, masked), maskLen });
    masked = lo;
    if (masked === 0) break;
  }
  return plan;
}

/**
 * One MAR iteration of every job, committing the tokens it samples. On failure every job's draws
 * are rewound, so retrying (e.g. one job at a time) samples exactly the same values.
 */
export async function runIteration(model: Model, jobs: ImageJob[]): Promise<void> {
  const rewinds = jobs.map((j) => j.draws.mark());
  // 1. The mask schedule: each job's plan names the tokens visible now and those this iteration
  //    predicts (job.current). With more iterations than tokens some iterations predict nothing.
  const predicting = jobs.filter((j) => j.current.predict.length > 0);
  const z: PerJob = new Map();
  try {
    for (const group of sameShape(predicting)) {
      // 2. The MAR encoder over the visible tokens, with the buffer tokens (docs/model.md §2.2 step 1).
      const { xEnc, llmIn } = await encoderStage(model, group);
      // 3. The LLM over them, attending to the prompt's cache (step 2).
      const hidden = await llmStage(model, group, llmIn);
      // 4. The MAR decoder: z, the condition of every token to predict (step 3).
      for (const [job, zj] of await decoderStage(model, group, xEnc, hidden)) z.set(job, zj);
    }
    // 5. The diffusion head samples each predicted token from its z, CFG on epsilon (docs/model.md §3.5).
    const x = await diffusionStage(model, predicting, z);
    // 6. Reveal: the sampled tokens join the visible ones for the next iteration.
    for (const j of jobs) j.commit(x.get(j) ?? new Float32Array(0));
  } catch (error) {
    for (const rewind of rewinds) rewind();
    throw error;
  }
}
