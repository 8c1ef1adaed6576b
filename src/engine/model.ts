/**
 * A loaded model: its manifest, tokenizer, the seven graphs and the per-resolution positional
 * tables, behind typed stage functions that take and return plain Float32Arrays with the
 * shapes in comments. Knows the ONNX contract (models/README.md), not the sampling algorithm.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { AppError, ErrorCode } from "../errors.js";
import { callFlops, type CallShape } from "./flops.js";
import { loadManifest, ROLES, type Manifest, type ResolutionSpec, type Role, type TableRef } from "./manifest.js";
import { f32, i64, loadGraph, probeProvider, type Graph, type Tensor } from "./onnx.js";
import { loadTokenizer, type ChatTokenizer } from "./tokenizer.js";
import type { EngineOptions, Provider } from "./types.js";

export interface Resolution {
  spec: ResolutionSpec;
  /** [S, W] with S = buffers + L: encoder positions. */
  encPos: Tensor;
  /** [S, W]: decoder positions. */
  decPos: Tensor;
  /** [L, W]: diffusion positions, added after decoder_norm. */
  diffPos: Tensor;
}

/** Per-layer key and value caches, each [R, kvHeads, P, headDim]. */
export type KvCache = Array<{ key: Float32Array; value: Float32Array }>;

export interface LlmInput {
  rows: number;
  /** New tokens per row. */
  T: number;
  /** Past length per row (all rows share it: pad before calling). */
  P: number;
  inputIds: BigInt64Array; // [R, T]
  inputsEmbeds: Float32Array; // [R, T, H]
  embedsMask: Float32Array; // [R, T] 1 = use inputs_embeds
  attentionMask: BigInt64Array; // [R, P + T]
  positionIds: BigInt64Array; // [R, T]
  past: KvCache;
}

export interface LlmOutput {
  hidden: Float32Array; // [R, T, H]
  logits: Float32Array; // [R, vocab] (last position)
  present: KvCache; // [R, kvHeads, P + T, headDim]
}

export type ModelOptions = Pick<EngineOptions, "provider" | "threads" | "log">;

export class Model {
  /**
   * FLOPs of every graph call so far, counted from the call shapes with the manifest's `flops`
   * table (0 throughout when the manifest has none). The bench reads and resets it.
   */
  flopsCounted = 0;

  private count(call: CallShape): void {
    if (this.manifest.flops !== null) this.flopsCounted += callFlops(this.manifest.flops, call);
  }

  private constructor(
    readonly manifest: Manifest,
    readonly tokenizer: ChatTokenizer,
    private readonly graphs: Record<Role, Graph>,
    private readonly resolutions: Map<number, Resolution>,
    readonly provider: Provider,
  ) {}

  static async load(dir: string, options: ModelOptions): Promise<Model> {
    const manifest = await loadManifest(dir);
    const tokenizer = await loadTokenizer(manifest);
    let provider = options.provider;
    if (provider !== "cpu") {
      const head = await readFile(path.join(dir, manifest.graphs.diffusion_head.file));
      const reason = await probeProvider(provider, head);
      if (reason !== null) {
        options.log?.(`engine: ${provider} is not available (${reason}); falling back to cpu`);
        provider = "cpu";
      }
    }
    const graphs = {} as Record<Role, Graph>;
    for (const role of ROLES) graphs[role] = await loadGraph(role, path.join(dir, manifest.graphs[role].file), { provider, threads: options.threads });
    const resolutions = new Map<number, Resolution>();
    for (const spec of manifest.resolutions) {
      const file = path.join(dir, spec.posFile);
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (error) {
        throw new AppError(ErrorCode.MODEL_INVALID, `${file}: cannot read positional tables`, { cause: error });
      }
      const table = (ref: TableRef, field: string): Tensor => {
        const n = ref.shape[0] * ref.shape[1];
        if (ref.offset + n * 4 > bytes.length) throw new AppError(ErrorCode.MODEL_INVALID, `${file}: ${field} runs past the end of the file`);
        const data = new Float32Array(n);
        new Uint8Array(data.buffer).set(bytes.subarray(ref.offset, ref.offset + n * 4));
        return f32(data, [...ref.shape]);
      };
      resolutions.set(spec.size, { spec, encPos: table(spec.encPos, "enc_pos"), decPos: table(spec.decPos, "dec_pos"), diffPos: table(spec.diffPos, "diff_pos") });
    }
    return new Model(manifest, tokenizer, graphs, resolutions, provider);
  }

  resolution(size: number): Resolution {
    const res = this.resolutions.get(size);
    if (res === undefined) throw AppError.badInput("params.resolution", `one of ${[...this.resolutions.keys()].join(", ")}`, size);
    return res;
  }

  get sizes(): number[] {
    return [...this.resolutions.keys()];
  }

  /** pixels [B, 3, H, W] in [-1, 1] -> posterior mean [B, C, h, w] (unscaled). */
  async vaeEncode(pixels: Float32Array, B: number, H: number, W: number): Promise<Float32Array> {
    const out = await this.graphs.vae_encoder.run({ pixels: f32(pixels, [B, 3, H, W]) });
    const stride = this.manifest.dims.vaeStride;
    this.count({ role: "vae_encoder", B, tokens: (H / stride) * (W / stride) });
    return out[this.manifest.graphs.vae_encoder.outputs[0]!.name]!.data as Float32Array;
  }

  /** latent [B, C, h, w] (already divided by vae scale) -> pixels [B, 3, H, W] in ~[-1, 1]. */
  async vaeDecode(latent: Float32Array, B: number, h: number, w: number): Promise<Float32Array> {
    const out = await this.graphs.vae_decoder.run({ latent: f32(latent, [B, this.manifest.dims.latentChannels, h, w]) });
    this.count({ role: "vae_decoder", B, tokens: h * w });
    return out[this.manifest.graphs.vae_decoder.outputs[0]!.name]!.data as Float32Array;
  }

  /** latents [B, V, C] at ascending visIdx [B, V] -> xEnc [B, buf+V, W] (buffers first), llmIn [B, V+buf, H] (buffers last). */
  async marEncode(res: Resolution, latents: Float32Array, visIdx: ArrayLike<number>, B: number, V: number): Promise<{ xEnc: Float32Array; llmIn: Float32Array }> {
    const out = await this.graphs.mar_encoder.run({
      latents: f32(latents, [B, V, this.manifest.dims.latentChannels]),
      vis_idx: i64(visIdx, [B, V]),
      enc_pos: res.encPos,
    });
    this.count({ role: "mar_encoder", B, S: this.manifest.dims.bufferTokens + V });
    return { xEnc: out.x_enc!.data as Float32Array, llmIn: out.llm_in!.data as Float32Array };
  }

  /** xCon [B, S, W], con [B] (0: mask_token, 1: decoder_embed(xCon)) -> fill [B, S, W]. */
  async marFill(xCon: Float32Array, con: Float32Array, B: number, S: number): Promise<Float32Array> {
    const out = await this.graphs.mar_fill.run({ x_con: f32(xCon, [B, S, this.manifest.dims.marWidth]), con: f32(con, [B]) });
    this.count({ role: "mar_fill", B, S });
    return out.fill!.data as Float32Array;
  }

  /** -> z [B, n, W] at ascending predIdx [B, n]. */
  async marDecode(
    res: Resolution,
    args: { xEnc: Float32Array; llmOut: Float32Array; visIdx: ArrayLike<number>; fill: Float32Array; predIdx: ArrayLike<number>; B: number; V: number; n: number },
  ): Promise<Float32Array> {
    const { bufferTokens: buf, marWidth: W, llmHidden: H } = this.manifest.dims;
    const S = buf + res.spec.tokens;
    const out = await this.graphs.mar_decoder.run({
      x_enc: f32(args.xEnc, [args.B, buf + args.V, W]),
      llm_out: f32(args.llmOut, [args.B, args.V + buf, H]),
      vis_idx: i64(args.visIdx, [args.B, args.V]),
      fill: f32(args.fill, [args.B, S, W]),
      dec_pos: res.decPos,
      diff_pos: res.diffPos,
      pred_idx: i64(args.predIdx, [args.B, args.n]),
    });
    this.count({ role: "mar_decoder", B: args.B, V: args.V, buf, S });
    return out.z!.data as Float32Array;
  }

  async llm(input: LlmInput): Promise<LlmOutput> {
    const limit = this.manifest.kv.rowsWithPast;
    if (limit !== null && input.T > 1 && input.P > 0 && input.rows > limit) return this.llmInParts(input, limit);
    const { llmHidden: H, llmLayers, llmKvHeads: kvh, llmHeadDim: hd } = this.manifest.dims;
    const { rows: R, T, P } = input;
    const feeds: Record<string, Tensor> = {
      input_ids: i64(input.inputIds, [R, T]),
      inputs_embeds: f32(input.inputsEmbeds, [R, T, H]),
      embeds_mask: f32(input.embedsMask, [R, T]),
      attention_mask: i64(input.attentionMask, [R, P + T]),
      position_ids: i64(input.positionIds, [R, T]),
    };
    for (let i = 0; i < llmLayers; i++) {
      const [k, v] = this.manifest.kv.past(i);
      feeds[k] = f32(input.past[i]!.key, [R, kvh, P, hd]);
      feeds[v] = f32(input.past[i]!.value, [R, kvh, P, hd]);
    }
    const out = await this.graphs.llm.run(feeds);
    this.count({ role: "llm", B: R, T, P });
    const present: KvCache = [];
    for (let i = 0; i < llmLayers; i++) {
      const [k, v] = this.manifest.kv.present(i);
      present.push({ key: out[k]!.data as Float32Array, value: out[v]!.data as Float32Array });
    }
    const names = this.manifest.graphs.llm.outputs.map((o) => o.name);
    return { hidden: out[names[0]!]!.data as Float32Array, logits: out[names[1]!]!.data as Float32Array, present };
  }

  /**
   * The llm call in groups of at most `limit` rows (manifest kv_cache.rows_with_past), joined
   * back into one output: rows are independent, so the result is the one batched call's.
   */
  private async llmInParts(input: LlmInput, limit: number): Promise<LlmOutput> {
    const { llmHidden: H, vocabSize, llmKvHeads: kvh, llmHeadDim: hd } = this.manifest.dims;
    const { rows: R, T, P } = input;
    const kvRow = kvh * P * hd; // floats of one row of a past tensor [R, kvh, P, hd]
    const kvOut = kvh * (P + T) * hd;
    const hidden = new Float32Array(R * T * H);
    const logits = new Float32Array(R * vocabSize);
    const present: KvCache = input.past.map(() => ({ key: new Float32Array(R * kvOut), value: new Float32Array(R * kvOut) }));
    for (let r0 = 0; r0 < R; r0 += limit) {
      const r1 = Math.min(R, r0 + limit);
      const part = await this.llm({
        rows: r1 - r0,
        T,
        P,
        inputIds: input.inputIds.subarray(r0 * T, r1 * T),
        inputsEmbeds: input.inputsEmbeds.subarray(r0 * T * H, r1 * T * H),
        embedsMask: input.embedsMask.subarray(r0 * T, r1 * T),
        attentionMask: input.attentionMask.subarray(r0 * (P + T), r1 * (P + T)),
        positionIds: input.positionIds.subarray(r0 * T, r1 * T),
        past: input.past.map((l) => ({ key: l.key.subarray(r0 * kvRow, r1 * kvRow), value: l.value.subarray(r0 * kvRow, r1 * kvRow) })),
      });
      hidden.set(part.hidden, r0 * T * H);
      logits.set(part.logits, r0 * vocabSize);
      part.present.forEach((l, i) => {
        present[i]!.key.set(l.key, r0 * kvOut);
        present[i]!.value.set(l.value, r0 * kvOut);
      });
    }
    return { hidden, logits, present };
  }

  /** x [N, C], t [N] original timesteps, c [N, W] -> [N, 2C] (eps ‖ learned-range v). */
  async diffusionHead(x: Float32Array, t: ArrayLike<number>, c: Float32Array, N: number): Promise<Float32Array> {
    const { latentChannels: C, marWidth: W } = this.manifest.dims;
    const out = await this.graphs.diffusion_head.run({ x: f32(x, [N, C]), t: i64(t, [N]), c: f32(c, [N, W]) });
    this.count({ role: "diffusion_head", N });
    return out[this.manifest.graphs.diffusion_head.outputs[0]!.name]!.data as Float32Array;
  }

  /** True when every session still runs its smallest known-good inputs (see Graph.probe). */
  async healthy(): Promise<boolean> {
    for (const role of ROLES) if (!(await this.graphs[role].probe())) return false;
    return true;
  }

  async release(): Promise<void> {
    for (const role of ROLES) await this.graphs[role].release();
  }
}

/** An empty cache (P = 0) for `rows` rows. */
export function emptyKv(model: Model): KvCache {
  return Array.from({ length: model.manifest.dims.llmLayers }, () => ({ key: new Float32Array(0), value: new Float32Array(0) }));
}
