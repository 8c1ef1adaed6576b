/**
 * The prompt prefix: chat-framed prompts tokenized, right-padded to one length, image
 * placeholders replaced by proj_in rows, and run once through the LLM for its KV cache
 * (docs/model.md §3.1-3.2, 4.3, 5). Each MAR iteration attends to this cache and never extends it.
 */
import type { KvCache, Model } from "./model.js";
import { emptyKv } from "./model.js";
import type { HistoryTurn } from "./types.js";

export interface Prefix {
  rows: number;
  /** Padded prompt length. */
  P: number;
  /** [rows, P] 1 = real token. */
  mask: BigInt64Array;
  /** Unpadded length of each row: image tokens continue from here. */
  valid: Int32Array;
  past: KvCache;
  /** [rows, vocab]: logits at the last position (understanding reads row 0). */
  logits: Float32Array;
}

/**
 * texts: one chat string per row. imageRows: [L+buf, H] proj_in rows for the image tokens of
 * every row (edit, understand), or null (text-to-image).
 */
export async function prefill(model: Model, texts: string[], imageRows: Float32Array | null, history: readonly HistoryTurn[] = []): Promise<Prefix> {
  const tok = model.tokenizer;
  const H = model.manifest.dims.llmHidden;
  const seqs = texts.map((t) => tok.chat(t, history));
  const R = seqs.length;
  const P = Math.max(...seqs.map((s) => s.length));
  const ids = new BigInt64Array(R * P).fill(BigInt(tok.padId));
  const mask = new BigInt64Array(R * P);
  const embeds = new Float32Array(R * P * H);
  const embedsMask = new Float32Array(R * P);
  const valid = new Int32Array(R);
  const positions = new BigInt64Array(R * P);
  seqs.forEach((seq, r) => {
    valid[r] = seq.length;
    let img = 0;
    seq.forEach((id, i) => {
      ids[r * P + i] = BigInt(id);
      mask[r * P + i] = 1n;
      if (id === tok.imageTokenId) {
        if (imageRows === null || (img + 1) * H > imageRows.length) throw new Error(`prompt row ${r} has more image tokens than image rows`);
        embeds.set(imageRows.subarray(img * H, (img + 1) * H), (r * P + i) * H);
        embedsMask[r * P + i] = 1;
        img++;
      }
    });
    if (imageRows !== null && img * H !== imageRows.length) throw new Error(`prompt row ${r} has ${img} image tokens, expected ${imageRows.length / H}`);
    for (let i = 0; i < P; i++) positions[r * P + i] = BigInt(i); // default positions in the prefix pass
  });
  const out = await model.llm({ rows: R, T: P, P: 0, inputIds: ids, inputsEmbeds: embeds, embedsMask, attentionMask: mask, positionIds: positions, past: emptyKv(model) });
  return { rows: R, P, mask, valid, past: out.present, logits: out.logits };
}
