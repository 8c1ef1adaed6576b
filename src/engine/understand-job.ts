/**
 * Image understanding (docs/model.md §5): the image enters the prompt as proj_in rows of the MAR encoder
 * (no SigLIP, as the official code), then greedy decoding one token per scheduler tick until
 * <|im_end|> or maxTokens, with the KV cache growing as usual.
 */
import { encodeImage } from "./image-job.js";
import type { KvCache, Model } from "./model.js";
import { prefill } from "./prefix.js";
import type { HistoryTurn, RgbTensor, UnderstandParams } from "./types.js";

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

export class UnderstandJob {
  readonly ids: number[] = [];
  text = "";
  done = false;
  private past: KvCache;
  private length: number;
  private logits: Float32Array;

  private constructor(
    readonly model: Model,
    readonly params: UnderstandParams,
    prefix: { past: KvCache; P: number; logits: Float32Array },
  ) {
    this.past = prefix.past;
    this.length = prefix.P;
    this.logits = prefix.logits;
  }

  /**
   * The prompt is `<image>x(L+buf)\n{question}` in one user turn; earlier text turns of the
   * conversation, when given, come before it as plain chat turns.
   */
  static async create(model: Model, image: RgbTensor, question: string, history: HistoryTurn[], params: UnderstandParams): Promise<UnderstandJob> {
    const res = model.resolution(params.resolution);
    const { imageRows } = await encodeImage(model, res, image);
    const { prompts } = model.manifest;
    const user = prompts.understand.replace("{image}", model.tokenizer.imageText(res.spec.imagePromptTokens)).replace("{question}", question);
    const prefix = await prefill(model, [user], imageRows, history);
    return new UnderstandJob(model, params, { past: prefix.past, P: prefix.P, logits: prefix.logits });
  }

  /** Emits the next greedy token; returns the new text (delta) or null at the end. */
  async next(): Promise<string | null> {
    if (this.done) return null;
    const tok = this.model.tokenizer;
    const id = argmax(this.logits);
    if (id === tok.eosId) {
      this.done = true;
      return null;
    }
    this.ids.push(id);
    const text = tok.decode(this.ids);
    const delta = text.slice(this.text.length);
    this.text = text;
    if (this.ids.length >= this.params.maxTokens) {
      this.done = true;
      return delta;
    }
    const out = await this.model.llm({
      rows: 1,
      T: 1,
      P: this.length,
      inputIds: BigInt64Array.of(BigInt(id)),
      inputsEmbeds: new Float32Array(this.model.manifest.dims.llmHidden),
      embedsMask: new Float32Array(1),
      attentionMask: new BigInt64Array(this.length + 1).fill(1n),
      positionIds: BigInt64Array.of(BigInt(this.length)),
      past: this.past,
    });
    this.past = out.present;
    this.logits = out.logits;
    this.length++;
    return delta;
  }
}
