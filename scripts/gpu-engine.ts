/**
 * The engine's half of the GPU check (issue 13, item 2; driven by models/toolkit/gpu_check.py):
 * generation time per resolution on the given provider, the throughput of `batch` jobs submitted
 * together against one, and onnxruntime's MatMul FLOP/s on that provider. JSON lines on stdout.
 *
 *   npx tsx scripts/gpu-engine.ts MODEL_DIR --sizes 512,1024 --steps 32 --diffusion-steps 100 \
 *       --cfg 3 --batch 4 --provider webgpu --matmul-size 4096
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine/engine.js";
import { matmulFlopsPerSecond } from "../src/engine/onnx.js";
import type { ImageParams, Provider } from "../src/engine/types.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sizes: { type: "string", default: "512,1024" },
    steps: { type: "string", default: "32" },
    "diffusion-steps": { type: "string", default: "100" },
    cfg: { type: "string", default: "3" },
    batch: { type: "string", default: "4" },
    provider: { type: "string", default: "webgpu" },
    "matmul-size": { type: "string", default: "4096" },
  },
});
const modelDir = positionals[0];
if (modelDir === undefined) throw new Error("usage: gpu-engine.ts MODEL_DIR [--sizes 512,1024] ...");
const emit = (m: Record<string, unknown>): void => console.log(JSON.stringify(m));
const batch = Number(values.batch);
const sizes = values.sizes.split(",").map(Number);
const base: Partial<ImageParams> = { steps: Number(values.steps), diffusionSteps: Number(values["diffusion-steps"]), cfg: Number(values.cfg), preview: "none" };

const lines: string[] = [];
const engine = await Engine.load({ modelDir, provider: values.provider as Provider, threads: 0, maxQueue: 4 * batch, maxBatch: batch, log: (l) => lines.push(l) });
const provider = engine.model.provider;
if (provider !== values.provider) emit({ metric: "engine_provider", value: provider, asked: values.provider, reason: lines.join(" | ") });

/** Wall time of jobs submitted together, to their last event. */
async function timed(resolution: number, seeds: number[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(seeds.map(async (seed) => {
    for await (const _ of engine.submit({ kind: "generate", prompt: "a red circle", params: { ...base, resolution, seed } }).events);
  }));
  return performance.now() - t0;
}

try {
  const single = new Map<number, number>();
  for (const size of sizes) {
    await timed(size, [0]); // warm-up: session initialisation, shader compilation
    engine.model.flopsCounted = 0;
    const ms = await timed(size, [1]);
    single.set(size, ms);
    const flops = engine.model.flopsCounted;
    emit({ metric: "engine_generate_ms", value: Math.round(ms), resolution: size, provider, ...base, achieved_tflops: flops > 0 ? Math.round(flops / ms / 1e6) / 1e3 : null });
  }
  const size = sizes[0]!;
  const together = await timed(size, Array.from({ length: batch }, (_, i) => 10 + i));
  emit({ metric: "engine_batch_throughput", value: Math.round(((batch * single.get(size)!) / together) * 100) / 100, jobs: batch, resolution: size, single_ms: Math.round(single.get(size)!), batched_ms: Math.round(together) });
  const n = Number(values["matmul-size"]);
  const matmul = await matmulFlopsPerSecond({ provider, threads: 0 }, n, 10);
  emit({ metric: "engine_matmul_tflops", value: Math.round(matmul / 1e9) / 1e3, provider, matmul: `fp32 [${n},${n}] @ [${n},${n}]` });
} finally {
  await engine.close();
}
