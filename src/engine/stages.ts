/**
 * The batched stages of one MAR iteration (continuous batching, docs/architecture.md section 5),
 * in the order mar.ts calls them. Jobs whose iteration has the same resolution, visible count V and
 * predicted count n share one session.run per stage (encoder, LLM, decoder); the diffusion head
 * runs all jobs' tokens in one call per DDPM step. Each stage takes and returns plain per-job
 * values (rows = cond (+ uncond)), so no stage writes into a job. Every row is computed as it
 * would be alone, so a batched job gives the same bytes as the job run by itself (test/engine).
 */
import { ddpmStep } from "./diffusion.js";
import type { ImageJob } from "./image-job.js";
import type { KvCache, Model } from "./model.js";

/** One value per job: a stage's output, or a later stage's input. */
export type PerJob = Map<ImageJob, Float32Array>;

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits a batched output [rows, ...] back into each job's rows, `rowSize` floats a row. */
function split(group: ImageJob[], out: Float32Array, rowSize: number): PerJob {
  const parts: PerJob = new Map();
  let row = 0;
  for (const job of group) {
    parts.set(job, out.slice(row * rowSize, (row + job.rows) * rowSize));
    row += job.rows;
  }
  return parts;
}

const rowsOf = (group: ImageJob[]): number => group.reduce((n, j) => n + j.rows, 0);

function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [item]);
    else g.push(item);
  }
  return [...groups.values()];
}

/** Jobs whose iteration has the same resolution, V and n: they can share the encoder, LLM and decoder calls. */
export function sameShape(jobs: ImageJob[]): ImageJob[][] {
  return groupBy(jobs, (j) => `${j.res.spec.size}|${j.current.visible.length}|${j.current.predict.length}`);
}

/** MAR encoder for jobs sharing resolution and V: xEnc [rows, buf+V, W] (buffers first), llmIn [rows, V+buf, H] (buffers last). */
export async function encoderStage(model: Model, group: ImageJob[]): Promise<{ xEnc: PerJob; llmIn: PerJob }> {
  const V = group[0]!.current.visible.length;
  const inputs = group.map((j) => j.encoderInput());
  const rows = rowsOf(group);
  const visIdx = new Int32Array(rows * V);
  let at = 0;
  for (const inp of inputs) {
    visIdx.set(inp.visIdx, at);
    at += inp.visIdx.length;
  }
  const { xEnc, llmIn } = await model.marEncode(group[0]!.res, concat(inputs.map((i) => i.latents)), visIdx, rows, V);
  const { bufferTokens: buf, marWidth: W, llmHidden: H } = model.manifest.dims;
  return { xEnc: split(group, xEnc, (buf + V) * W), llmIn: split(group, llmIn, (V + buf) * H) };
}

/**
 * The LLM over each job's visible + buffer rows, attending to its cached prompt (docs/model.md §2.2 step 2):
 * hidden [rows, V+buf, H]. Only jobs with equally long prompt caches share a call: padding a cache
 * would sum attention over a longer row and change float rounding, and the aim is identical bytes.
 */
export async function llmStage(model: Model, group: ImageJob[], llmIn: PerJob): Promise<PerJob> {
  const hidden: PerJob = new Map();
  for (const same of groupBy(group, (j) => String(j.prefix.P))) {
    for (const [job, h] of await llmCall(model, same, llmIn)) hidden.set(job, h);
  }
  return hidden;
}

/**
 * One LLM call. Called with jobs whose caches have the same padded length P; the copy below still
 * handles unequal ones (right-padded, pad keys masked, as the reference pads cond and uncond prompts).
 */
async function llmCall(model: Model, group: ImageJob[], llmIn: PerJob): Promise<PerJob> {
  const { bufferTokens: buf, llmHidden: H, llmLayers, llmKvHeads: kvh, llmHeadDim: hd } = model.manifest.dims;
  const T = group[0]!.current.visible.length + buf;
  const rows = rowsOf(group);
  const P = Math.max(...group.map((j) => j.prefix.P));
  const attentionMask = new BigInt64Array(rows * (P + T));
  const positionIds = new BigInt64Array(rows * T);
  let row = 0;
  for (const job of group) {
    for (let r = 0; r < job.rows; r++, row++) {
      for (let i = 0; i < job.prefix.P; i++) attentionMask[row * (P + T) + i] = job.prefix.mask[r * job.prefix.P + i]!;
      for (let i = 0; i < T; i++) {
        attentionMask[row * (P + T) + P + i] = 1n;
        positionIds[row * T + i] = BigInt(job.prefix.valid[r]! + i); // continue after the unpadded prompt
      }
    }
  }
  let past: KvCache;
  if (group.length === 1) {
    past = group[0]!.prefix.past;
  } else {
    past = [];
    for (let l = 0; l < llmLayers; l++) {
      const key = new Float32Array(rows * kvh * P * hd);
      const value = new Float32Array(rows * kvh * P * hd);
      let r0 = 0;
      for (const job of group) {
        const src = job.prefix.past[l]!;
        const p = job.prefix.P;
        for (let r = 0; r < job.rows; r++) {
          for (let h = 0; h < kvh; h++) {
            const from = (r * kvh + h) * p * hd;
            const to = ((r0 + r) * kvh + h) * P * hd;
            key.set(src.key.subarray(from, from + p * hd), to);
            value.set(src.value.subarray(from, from + p * hd), to);
          }
        }
        r0 += job.rows;
      }
      past.push({ key, value });
    }
  }
  const out = await model.llm({
    rows,
    T,
    P,
    inputIds: new BigInt64Array(rows * T).fill(BigInt(model.tokenizer.padId)),
    inputsEmbeds: concat(group.map((j) => llmIn.get(j)!)),
    embedsMask: new Float32Array(rows * T).fill(1),
    attentionMask,
    positionIds,
    past,
  });
  // The present cache is dropped: the prompt cache is never extended (docs/model.md §3.3 step 1).
  return split(group, out.hidden, T * H);
}

/** MAR decoder for jobs sharing resolution, V and n: z [rows, n, W] at the tokens to predict. */
export async function decoderStage(model: Model, group: ImageJob[], xEnc: PerJob, hidden: PerJob): Promise<PerJob> {
  const { marWidth: W } = model.manifest.dims;
  const V = group[0]!.current.visible.length;
  const n = group[0]!.current.predict.length;
  const rows = rowsOf(group);
  const visIdx = new Int32Array(rows * V);
  const predIdx = new Int32Array(rows * n);
  let row = 0;
  for (const job of group) {
    for (let r = 0; r < job.rows; r++, row++) {
      visIdx.set(job.current.visible, row * V);
      predIdx.set(job.current.predict, row * n);
    }
  }
  const z = await model.marDecode(group[0]!.res, {
    xEnc: concat(group.map((j) => xEnc.get(j)!)),
    llmOut: concat(group.map((j) => hidden.get(j)!)),
    visIdx,
    fill: concat(group.map((j) => j.fill)),
    predIdx,
    B: rows,
    V,
    n,
  });
  return split(group, z, n * W);
}

/**
 * The diffusion head for every job's tokens to predict, one call per DDPM step (docs/model.md §3.5):
 * the sampled latents x [n, C] of each job. Jobs with fewer diffusion steps join later, so all
 * finish on the same call. Each job draws its initial noise and per-step noise from its own
 * source, in the reference's order.
 */
export async function diffusionStage(model: Model, jobs: ImageJob[], z: PerJob): Promise<PerJob> {
  const { latentChannels: C, marWidth: W } = model.manifest.dims;
  const xs = jobs.map((j) => j.draws.normals(j.current.predict.length * C)); // initial noise, not tempered
  const maxS = Math.max(...jobs.map((j) => j.schedule.timesteps.length));
  for (let k = maxS - 1; k >= 0; k--) {
    const active = jobs.map((j, i) => ({ j, i })).filter(({ j }) => k < j.schedule.timesteps.length);
    const N = active.reduce((sum, { j }) => sum + j.rows * j.current.predict.length, 0);
    if (N === 0) continue;
    const x = new Float32Array(N * C);
    const t = new Int32Array(N);
    const c = new Float32Array(N * W);
    let row = 0;
    for (const { j, i } of active) {
      const n = j.current.predict.length;
      for (let r = 0; r < j.rows; r++) {
        // Both branches see the same x (docs/model.md §3.5); c is the cond or uncond row of z.
        x.set(xs[i]!, row * C);
        t.fill(j.schedule.timesteps[k]!, row, row + n);
        c.set(z.get(j)!.subarray(r * n * W, (r + 1) * n * W), row * W);
        row += n;
      }
    }
    const out = await model.diffusionHead(x, t, c, N);
    row = 0;
    for (const { j, i } of active) {
      const n = j.current.predict.length;
      const outC = out.subarray(row * 2 * C, (row + n) * 2 * C);
      const outU = j.rows === 2 ? out.subarray((row + n) * 2 * C, (row + 2 * n) * 2 * C) : null;
      const noise = k > 0 ? j.draws.normals(n * C) : null;
      ddpmStep(j.schedule, k, xs[i]!, outC, outU, C, j.scale, j.params.temperature, noise);
      row += j.rows * n;
    }
  }
  return new Map(jobs.map((j, i) => [j, xs[i]!]));
}
