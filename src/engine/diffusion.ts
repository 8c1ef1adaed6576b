/**
 * The diffusion head's sampler: respaced cosine DDPM with learned-range variance, exactly as
 * UniPic-1 (docs/model.md §3.5; guided-diffusion's gaussian_diffusion.py and respace.py, as used by MAR's
 * DiffLoss). Tables are float64; the per-element step runs in float64 and stores float32.
 * Pure functions: no ONNX, no randomness of its own (noise comes in).
 */

export interface DiffusionConfig {
  /** Base process length (1000). */
  T: number;
  /** UniPic clips the cosine betas at 0.2 (MAR and Harmon use 0.999). */
  maxBeta: number;
  /** Cosine schedule offset s (0.008). */
  cosineS: number;
}

export interface Schedule {
  /** Original timesteps t_k fed to the network, k = 0..S-1 (k = S-1 is the noisiest). */
  timesteps: Int32Array;
  betas: Float64Array;
  alphasCumprod: Float64Array;
  alphasCumprodPrev: Float64Array;
  sqrtRecipAc: Float64Array;
  sqrtRecipm1Ac: Float64Array;
  posteriorVariance: Float64Array;
  postLogvarClipped: Float64Array;
  logBetas: Float64Array;
  coef1: Float64Array;
  coef2: Float64Array;
}

/** Python's round(): halves go to the even neighbour (guided-diffusion respacing relies on it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** guided-diffusion space_timesteps(T, "S") with one section: float stride, banker's rounding. */
export function spaceTimesteps(T: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new RangeError(`cannot take ${steps} steps from ${T}`);
  const stride = steps > 1 ? (T - 1) / (steps - 1) : 1;
  const taken = new Set<number>();
  let cur = 0;
  for (let i = 0; i < steps; i++) {
    taken.add(roundHalfEven(cur));
    cur += stride;
  }
  return [...taken].sort((a, b) => a - b);
}

function alphaBar(t: number, s: number): number {
  const c = Math.cos(((t + s) / (1 + s)) * (Math.PI / 2));
  return c * c;
}

const cache = new Map<string, Schedule>();

/** The respaced tables for `steps` diffusion steps (cached: they depend on the config only). */
export function makeSchedule(config: DiffusionConfig, steps: number): Schedule {
  const key = `${config.T}/${config.maxBeta}/${config.cosineS}/${steps}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const { T, maxBeta, cosineS } = config;
  // Base cumulative alphas over all T steps.
  const acBase = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    const beta = Math.min(1 - alphaBar((i + 1) / T, cosineS) / alphaBar(i / T, cosineS), maxBeta);
    prod *= 1 - beta;
    acBase[i] = prod;
  }
  const timesteps = spaceTimesteps(T, steps);
  const S = timesteps.length;
  const betas = new Float64Array(S);
  let last = 1;
  timesteps.forEach((t, k) => {
    betas[k] = 1 - acBase[t]! / last;
    last = acBase[t]!;
  });
  const ac = new Float64Array(S);
  const acp = new Float64Array(S);
  prod = 1;
  for (let k = 0; k < S; k++) {
    acp[k] = prod;
    prod *= 1 - betas[k]!;
    ac[k] = prod;
  }
  const map = (f: (k: number) => number): Float64Array => Float64Array.from({ length: S }, (_, k) => f(k));
  const pv = map((k) => (betas[k]! * (1 - acp[k]!)) / (1 - ac[k]!));
  const schedule: Schedule = {
    timesteps: Int32Array.from(timesteps),
    betas,
    alphasCumprod: ac,
    alphasCumprodPrev: acp,
    sqrtRecipAc: map((k) => Math.sqrt(1 / ac[k]!)),
    sqrtRecipm1Ac: map((k) => Math.sqrt(1 / ac[k]! - 1)),
    posteriorVariance: pv,
    // The first posterior variance is 0; guided-diffusion clips its log with the second one.
    postLogvarClipped: map((k) => Math.log(S > 1 ? pv[k === 0 ? 1 : k]! : betas[k]!)),
    logBetas: map((k) => Math.log(betas[k]!)),
    coef1: map((k) => (betas[k]! * Math.sqrt(acp[k]!)) / (1 - ac[k]!)),
    coef2: map((k) => ((1 - acp[k]!) * Math.sqrt(1 - betas[k]!)) / (1 - ac[k]!)),
  };
  cache.set(key, schedule);
  return schedule;
}

/**
 * One guided ancestral step at index k, in place on x.
 * x [n, C]; outC / outU [n, 2C] = head outputs (eps ‖ v) for the cond and uncond rows (outU null:
 * no CFG); noise [n, C] (ignored at k = 0). CFG guides eps only; the variance is the cond row's.
 */
export function ddpmStep(
  sch: Schedule,
  k: number,
  x: Float32Array,
  outC: Float32Array,
  outU: Float32Array | null,
  C: number,
  cfg: number,
  temperature: number,
  noise: Float32Array | null,
): void {
  const n = x.length / C;
  const a = sch.sqrtRecipAc[k]!;
  const b = sch.sqrtRecipm1Ac[k]!;
  const c1 = sch.coef1[k]!;
  const c2 = sch.coef2[k]!;
  const lb = sch.logBetas[k]!;
  const lp = sch.postLogvarClipped[k]!;
  for (let r = 0; r < n; r++) {
    const o = r * 2 * C;
    for (let j = 0; j < C; j++) {
      const i = r * C + j;
      const epsC = outC[o + j]!;
      const eps = outU === null ? epsC : outU[o + j]! + cfg * (epsC - outU[o + j]!);
      const xi = x[i]!;
      const x0 = a * xi - b * eps; // no clipping (clip_denoised=False)
      const mean = c1 * x0 + c2 * xi;
      if (k === 0 || noise === null) {
        x[i] = mean;
        continue;
      }
      const frac = (outC[o + C + j]! + 1) / 2; // learned range, not clamped
      const logvar = frac * lb + (1 - frac) * lp;
      x[i] = mean + Math.exp(0.5 * logvar) * noise[i]! * temperature;
    }
  }
}
