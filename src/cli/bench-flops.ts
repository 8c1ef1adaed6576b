/**
 * `flops_utilisation` for `unipic bench` (issue 13, item 4): the engine's achieved FLOP/s over a
 * whole generation (FLOPs counted from every graph call's shapes with the manifest's `flops` table,
 * src/engine/flops.ts) divided by onnxruntime's FLOP/s on a large fp32 MatMul, measured in the same
 * run with the same provider and threads. It says how far the engine is from what the machine can do.
 */
import type { Engine } from "../engine/engine.js";
import { matmulFlopsPerSecond } from "../engine/onnx.js";
import type { ImageParams } from "../engine/types.js";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** One JSON line's fields: value is null (with a reason) when the manifest has no flops table. */
export async function flopsUtilisation(engine: Engine, params: Partial<ImageParams>, runs: number, threads: number): Promise<Record<string, unknown>> {
  const model = engine.model;
  if (model.manifest.flops === null) {
    return { metric: "flops_utilisation", value: null, reason: "the model's manifest has no flops table (export it with the current toolkit)" };
  }
  const rates: number[] = [];
  const matmul: number[] = [];
  let flops = 0;
  // Interleaved, so a busy phase of a shared machine slows both sides alike.
  for (let i = 0; i < runs; i++) {
    model.flopsCounted = 0;
    const t0 = performance.now();
    for await (const _ of engine.submit({ kind: "generate", prompt: "a red circle", params: { ...params, seed: i, preview: "none" } }).events);
    const seconds = (performance.now() - t0) / 1000;
    flops = model.flopsCounted;
    rates.push(flops / seconds);
    matmul.push(await matmulFlopsPerSecond({ provider: model.provider, threads }));
  }
  const achieved = median(rates);
  const peak = median(matmul);
  return {
    metric: "flops_utilisation",
    value: Math.round((achieved / peak) * 1000) / 1000,
    generation_gflop: Math.round(flops / 1e6) / 1e3,
    achieved_gflops: Math.round(achieved / 1e6) / 1e3,
    matmul_gflops: Math.round(peak / 1e6) / 1e3,
    matmul: "fp32 [1024,1024] @ [1024,1024]",
    provider: model.provider,
    threads,
    runs,
  };
}
