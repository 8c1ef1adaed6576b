/**
 * One generate or edit job as a state machine over MAR iterations (docs/model.md §3.3), so the scheduler
 * can run the iterations of several jobs in one batch (mar.ts). Holds the cond tokens only:
 * the uncond rows always equal them (docs/model.md §3.3 step 4), so they are duplicated when fed.
 */
import { makeSchedule, type Schedule } from "./diffusion.js";
import { cfgScale, planIterations, type IterationPlan } from "./mar.js";
import type { Model, Resolution } from "./model.js";
import { prefill, type Prefix } from "./prefix.js";
import { latentToTokens, linearPreview, pixelsToRgb, rgbToPixels, tokensToLatent } from "./preview.js";
import type { DrawSource } from "./rng.js";
import type { ImageParams, RgbTensor } from "./types.js";

export class ImageJob {
  /** [L, C] token latents of the image (cond rows). */
  readonly tokens: Float32Array;
  /** [L] 1 once a token is sampled. */
  readonly revealed: Uint8Array;
  readonly plan: IterationPlan[];
  readonly schedule: Schedule;
  /** Iterations done. */
  step = 0;

  private constructor(
    readonly model: Model,
    readonly res: Resolution,
    readonly params: ImageParams,
    readonly draws: DrawSource,
    /** Rows per MAR step: 2 with CFG (cond, uncond), else 1. */
    readonly rows: number,
    readonly prefix: Prefix,
    /** [rows, buf+L, W]: mask_token (generate) or decoder_embed(x_con) (edit) everywhere. */
    readonly fill: Float32Array,
  ) {
    const C = model.manifest.dims.latentChannels;
    const L = res.spec.tokens;
    this.tokens = new Float32Array(L * C);
    this.revealed = new Uint8Array(L);
    this.plan = planIterations(draws.order(L), params.steps); // one permutation per image
    this.schedule = makeSchedule(model.manifest.diffusion, params.diffusionSteps);
  }

  /** Text-to-image (docs/model.md §3): "Generate an image: {prompt}", negative "Generate an image.". */
  static async generate(model: Model, prompt: string, params: ImageParams, draws: DrawSource): Promise<ImageJob> {
    const { prompts, dims } = model.manifest;
    const res = model.resolution(params.resolution);
    const texts = [prompts.t2iPositive.replace("{prompt}", prompt)];
    if (params.cfg !== 1) texts.push(prompts.t2iNegative);
    const prefix = await prefill(model, texts, null);
    const S = dims.bufferTokens + res.spec.tokens;
    const fill = await model.marFill(new Float32Array(texts.length * S * dims.marWidth), new Float32Array(texts.length), texts.length, S);
    return new ImageJob(model, res, params, draws, texts.length, prefix, fill);
  }

  /** Editing (docs/model.md §4): the source enters the prompt as image tokens and the decoder as x_con. */
  static async edit(model: Model, source: RgbTensor, instruction: string, params: ImageParams, draws: DrawSource): Promise<ImageJob> {
    const { prompts, dims } = model.manifest;
    const res = model.resolution(params.resolution);
    const { xCon, imageRows } = await encodeImage(model, res, source);
    const image = model.tokenizer.imageText(res.spec.imagePromptTokens);
    const texts = [prompts.editPositive.replace("{image}", image).replace("{instruction}", instruction)];
    if (params.cfg !== 1) texts.push(prompts.editNegative.replace("{image}", image));
    const prefix = await prefill(model, texts, imageRows);
    const S = dims.bufferTokens + res.spec.tokens;
    const rowsXCon = new Float32Array(texts.length * xCon.length);
    for (let r = 0; r < texts.length; r++) rowsXCon.set(xCon, r * xCon.length);
    const fill = await model.marFill(rowsXCon, new Float32Array(texts.length).fill(1), texts.length, S);
    return new ImageJob(model, res, params, draws, texts.length, prefix, fill);
  }

  get done(): boolean {
    return this.step >= this.plan.length;
  }

  get current(): IterationPlan {
    return this.plan[this.step]!;
  }

  /** Encoder input of the current iteration: latents [rows, V, C] and indices [rows, V]. */
  encoderInput(): { latents: Float32Array; visIdx: Int32Array } {
    const C = this.model.manifest.dims.latentChannels;
    const vis = this.current.visible;
    const V = vis.length;
    const latents = new Float32Array(this.rows * V * C);
    const visIdx = new Int32Array(this.rows * V);
    for (let r = 0; r < this.rows; r++) {
      for (let i = 0; i < V; i++) {
        latents.set(this.tokens.subarray(vis[i]! * C, (vis[i]! + 1) * C), (r * V + i) * C);
        visIdx[r * V + i] = vis[i]!;
      }
    }
    return { latents, visIdx };
  }

  /** Guidance scale of the current iteration (docs/model.md §3.4). */
  get scale(): number {
    return cfgScale(this.params.cfg, this.params.cfgSchedule, this.res.spec.tokens, this.current.maskLen);
  }

  /** Writes the sampled latents x [n, C] of the current iteration and moves on. */
  commit(x: Float32Array): void {
    const C = this.model.manifest.dims.latentChannels;
    this.current.predict.forEach((p, i) => {
      this.tokens.set(x.subarray(i * C, (i + 1) * C), p * C);
      this.revealed[p] = 1;
    });
    this.step++;
  }

  linearPreview(): RgbTensor {
    return linearPreview(this.model.manifest, this.tokens, this.revealed, this.res.spec.grid);
  }

  /** The current latent (masked tokens 0) through the VAE decoder: a preview or the final image. */
  async decode(): Promise<RgbTensor> {
    const { latentChannels: C } = this.model.manifest.dims;
    const L = this.res.spec.tokens;
    const [h, w] = this.res.spec.grid;
    const latent = tokensToLatent(this.tokens, C, L, this.model.manifest.vaeScale);
    const pixels = await this.model.vaeDecode(latent, 1, h, w);
    return pixelsToRgb(pixels, this.res.spec.size, this.res.spec.size);
  }
}

/**
 * Source image -> x_con [buf+L, W] (MAR encoder, all tokens visible, buffers first) and the
 * proj_in rows [L+buf, H] that replace the prompt's image tokens (docs/model.md §4.2, 5).
 */
export async function encodeImage(model: Model, res: Resolution, image: RgbTensor): Promise<{ xCon: Float32Array; imageRows: Float32Array }> {
  const size = res.spec.size;
  if (image.width !== size || image.height !== size || image.rgb.length !== size * size * 3) {
    throw new RangeError(`image must be ${size}x${size} RGB for this resolution, got ${image.width}x${image.height}`);
  }
  const { latentChannels: C } = model.manifest.dims;
  const L = res.spec.tokens;
  const mean = await model.vaeEncode(rgbToPixels(image), 1, size, size); // [1, C, h, w]
  const tokens = latentToTokens(mean, C, L, model.manifest.vaeScale); // [L, C]
  const all = Int32Array.from({ length: L }, (_, i) => i);
  const { xEnc, llmIn } = await model.marEncode(res, tokens, all, 1, L);
  return { xCon: xEnc, imageRows: llmIn };
}
