/**
 * MAR's decoding plan (spec 3.3-3.4): which tokens each iteration reveals and the guidance scale
 * it uses. Pure: orders come from the job's DrawSource.
 */

/** Cosine mask schedule: tokens still masked after `step`, clamped to [1, stillMasked - 1]. */
export function maskLenAfter(step: number, numIter: number, L: number, stillMasked: number): number {
  const n = Math.floor(L * Math.cos(((Math.PI / 2) * (step + 1)) / numIter));
  return Math.max(1, Math.min(stillMasked - 1, n));
}

/** Guidance scale of an iteration: constant, or Muse's linear ramp over revealed tokens. */
export function cfgScale(cfg: number, schedule: "constant" | "linear", L: number, maskLen: number): number {
  return schedule === "constant" ? cfg : 1 + ((cfg - 1) * (L - maskLen)) / L;
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
