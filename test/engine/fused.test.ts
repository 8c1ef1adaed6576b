/**
 * What the engine does differently for fused-attention exports (issue 13): an llm call with new
 * tokens after a past goes one row at a time when the manifest says kv_cache.rows_with_past = 1,
 * with the same result as one batched call; and every call's FLOPs are counted from the manifest's
 * `flops` table. Runs the committed unipic-tiny graphs behind a manifest that declares both.
 */
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";
import { callFlops } from "../../src/engine/flops.js";
import { parseManifest } from "../../src/engine/manifest.js";
import { Model, type LlmInput } from "../../src/engine/model.js";
import { MODEL_DIR } from "./fixtures.js";

const FLOPS = { llm: { token: 1000, pair: 10, row: 7 }, diffusion_head: { row: 3 }, mar_decoder: { llm_token: 2, token: 5, pair: 1 } };
let dir: string;
let plain: Model;
let split: Model;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "unipic-fused-"));
  for (const f of await readdir(MODEL_DIR)) if (f !== "manifest.json") await symlink(path.join(MODEL_DIR, f), path.join(dir, f));
  const m = JSON.parse(await readFile(path.join(MODEL_DIR, "manifest.json"), "utf8")) as Record<string, Record<string, unknown>>;
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ ...m, kv_cache: { ...m.kv_cache, rows_with_past: 1 }, flops: FLOPS }));
  plain = await Model.load(MODEL_DIR, { provider: "cpu", threads: 1 });
  split = await Model.load(dir, { provider: "cpu", threads: 1 });
});
afterAll(async () => {
  await plain?.release();
  await split?.release();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random floats in [-1, 1). */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

/** R rows, T new tokens after a past of P, the second row's last prompt key a pad. */
function input(model: Model, R: number, T: number, P: number): LlmInput {
  const { llmHidden: H, llmLayers, llmKvHeads: kvh, llmHeadDim: hd } = model.manifest.dims;
  const attentionMask = new BigInt64Array(R * (P + T)).fill(1n);
  if (R > 1 && P > 0) attentionMask[P + T + P - 1] = 0n;
  const positionIds = new BigInt64Array(R * T);
  for (let r = 0; r < R; r++) for (let i = 0; i < T; i++) positionIds[r * T + i] = BigInt(P + i);
  return {
    rows: R,
    T,
    P,
    inputIds: new BigInt64Array(R * T).fill(5n),
    inputsEmbeds: floats(R * T * H, 1),
    embedsMask: new Float32Array(R * T).fill(1),
    attentionMask,
    positionIds,
    past: Array.from({ length: llmLayers }, (_, l) => ({ key: floats(R * kvh * P * hd, 10 + l), value: floats(R * kvh * P * hd, 50 + l) })),
  };
}

const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

describe("rows_with_past", () => {
  it("runs rows one at a time and joins them into the batched call's result", async () => {
    const inp = input(plain, 3, 4, 5);
    const a = await plain.llm(inp);
    const calls = vi.spyOn(split, "llm");
    const b = await split.llm(inp);
    expect(calls.mock.calls.map(([c]) => c.rows)).toEqual([3, 1, 1, 1]); // the call, then one per row
    calls.mockRestore();
    expect(b.hidden.length).toBe(a.hidden.length);
    expect(maxDiff(a.hidden, b.hidden)).toBeLessThan(1e-5);
    expect(maxDiff(a.logits, b.logits)).toBeLessThan(1e-5);
    for (let l = 0; l < a.present.length; l++) {
      expect(b.present[l]!.key.length).toBe(a.present[l]!.key.length);
      expect(maxDiff(a.present[l]!.key, b.present[l]!.key)).toBeLessThan(1e-5);
      expect(maxDiff(a.present[l]!.value, b.present[l]!.value)).toBeLessThan(1e-5);
    }
  });

  it("counts one call per row, and one call for a prefix pass (P = 0)", async () => {
    split.flopsCounted = 0;
    await split.llm(input(split, 2, 3, 4));
    expect(split.flopsCounted).toBe(2 * (1000 * 3 + 10 * 3 * 7 + 7));
    split.flopsCounted = 0;
    await split.llm(input(split, 2, 3, 0));
    expect(split.flopsCounted).toBe(2 * (1000 * 3 + 10 * 3 * 3 + 7));
  });

  it("rejects a rows_with_past that is not a positive integer", () => {
    const text = (v: unknown): string => JSON.stringify({ ...committed, kv_cache: { ...committed.kv_cache, rows_with_past: v } });
    for (const bad of [0, 1.5, "1"]) {
      let error: unknown;
      try {
        parseManifest(text(bad), dir);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe(ErrorCode.MODEL_INVALID);
    }
  });
});

let committed: Record<string, Record<string, unknown>>;
beforeAll(async () => {
  committed = JSON.parse(await readFile(path.join(MODEL_DIR, "manifest.json"), "utf8")) as Record<string, Record<string, unknown>>;
});

describe("callFlops", () => {
  it("applies each role's formula to the call's shapes", () => {
    expect(callFlops(FLOPS, { role: "diffusion_head", N: 11 })).toBe(33);
    expect(callFlops(FLOPS, { role: "mar_decoder", B: 2, V: 3, buf: 4, S: 20 })).toBe(2 * (2 * 7 + 5 * 20 + 400));
    expect(callFlops(FLOPS, { role: "mar_encoder", B: 2, S: 9 })).toBe(0); // no entry
  });

  it("reads a manifest without a flops table or rows_with_past as before", () => {
    const { flops: _, ...rest } = committed;
    const m = parseManifest(JSON.stringify({ ...rest, kv_cache: { ...committed.kv_cache, rows_with_past: undefined } }), dir);
    expect(m.flops).toBeNull();
    expect(m.kv.rowsWithPast).toBeNull();
  });
});
