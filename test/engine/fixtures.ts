/** Reads the Python reference's golden fixtures (test/fixtures/toolkit, format unipic-fixture/1). */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ImageParams, JobRequest, RgbTensor, UnderstandParams } from "../../src/engine/types.js";

export const MODEL_DIR = fileURLToPath(new URL("../../models/unipic-tiny", import.meta.url));

/** Requests of each kind, so tests read like the job they submit. */
export const gen = (prompt: string, params: Partial<ImageParams> = {}): JobRequest => ({ kind: "generate", prompt, params });
export const edit = (image: RgbTensor, instruction: string, params: Partial<ImageParams> = {}): JobRequest => ({ kind: "edit", image, instruction, params });
export const ask = (image: RgbTensor, question: string, params: Partial<UnderstandParams> = {}): JobRequest => ({ kind: "understand", image, question, history: [], params });

export interface B64Tensor {
  dtype: "float32" | "int64" | "uint8";
  shape: number[];
  b64: string;
}

export function fixture<T = any>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/toolkit/${name}.json`, import.meta.url), "utf8")) as T;
}

export function f32(t: B64Tensor): Float32Array {
  const bytes = Buffer.from(t.b64, "base64");
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export function i64(t: B64Tensor): number[] {
  const bytes = Buffer.from(t.b64, "base64");
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 8) out.push(Number(bytes.readBigInt64LE(i)));
  return out;
}

export function u8(t: B64Tensor): Uint8Array {
  return new Uint8Array(Buffer.from(t.b64, "base64"));
}

/** max |a - b| / (1 + |b|): relative where values are large, absolute near zero. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!)));
  return worst;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}
