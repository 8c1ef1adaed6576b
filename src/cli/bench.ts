/**
 * `unipic bench [--json] [--quick] [--no-torch] [--server-only]`: one JSON object a line, `{"metric", "value", ...}`, each a
 * median of several runs measured in this one process (the machines are noisy: compare ratios
 * from one run). Engine: generate_ms, torch_reference_ms and speedup_vs_torch (when
 * /usr/bin/python3 has torch), batch_speedup, pool_batch_speedup (the same through a pool of
 * engine workers), preview_overhead, step_ms_p50/p99,
 * first_preview_ms, flops_utilisation (bench-flops.ts). Server: preview_latency_ms_p50/p99 (engine step finished -> a graphql-ws
 * client on loopback has the preview, 50 subscribers) and turns_per_min (8 concurrent clients).
 * `--memory`: idle_rss_mb of the server on each store instead (bench-memory.ts).
 * `--history`: history_*_ms_p50/p99 of history queries, 50 clients (bench-history.ts).
 * `--soak [--minutes 30]`: mixed load for that long; memory, handles and leaks (bench-soak.ts).
 * `--scale`: the scaled-out mode instead (first_preview_ms per mode, worker_scaling; bench-scale.ts).
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { toGlobalId } from "../api/ids.js";
import { sendMessage } from "../turns/service.js";
import { Task } from "../api/types/enums.js";
import { startApp } from "../app.js";
import { engineOptions, loadConfig, type Config } from "../config.js";
import type { Engine } from "../engine/engine.js";
import { resolveImageParams } from "../engine/params.js";
import { EnginePool } from "../engine/pool.js";
import type { EngineClient, ImageParams, JobEvent } from "../engine/types.js";
import { AppError } from "../errors.js";
import { flopsUtilisation } from "./bench-flops.js";
import { loadEngine } from "./engine.js";
import { numberOption, parseArgs } from "./options.js";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const round = (x: number): number => Math.round(x * 100) / 100;

/** A generation's events on any engine client. */
function generate(engine: EngineClient, prompt: string, params: Partial<ImageParams>): AsyncGenerator<JobEvent, void, undefined> {
  return engine.submit({ kind: "generate", prompt, params }).events;
}

async function timeJob(events: AsyncGenerator<JobEvent, void, undefined>): Promise<{ ms: number; firstPreviewMs: number | null }> {
  const t0 = performance.now();
  let firstPreviewMs: number | null = null;
  for await (const e of events) if (e.type === "step" && e.preview !== null && firstPreviewMs === null) firstPreviewMs = performance.now() - t0;
  return { ms: performance.now() - t0, firstPreviewMs };
}

/** 8 generations one after another, then the same 8 submitted at once (same seeds): the ratio. */
async function batchSpeedup(generate: (seed: number) => AsyncGenerator<JobEvent, void, undefined>, runs: number): Promise<Record<string, number>> {
  const jobs = 8;
  const sequential: number[] = [];
  const together: number[] = [];
  for (let r = 0; r < Math.max(1, Math.floor(runs / 2)); r++) {
    let t0 = performance.now();
    for (let i = 0; i < jobs; i++) await timeJob(generate(i));
    sequential.push(performance.now() - t0);
    t0 = performance.now();
    await Promise.all(Array.from({ length: jobs }, (_, i) => timeJob(generate(i))));
    together.push(performance.now() - t0);
  }
  return { value: round(median(sequential) / median(together)), jobs, sequential_ms: round(median(sequential)), batched_ms: round(median(together)) };
}

/** The same through a pool of engine workers (ENGINE_WORKERS, at least 2): what extra cores add. */
async function poolMetrics(config: Config, runs: number, params: Partial<ImageParams>, emit: (m: Record<string, unknown>) => void): Promise<void> {
  const workers = Math.max(2, config.engineWorkers);
  const pool = await EnginePool.load(engineOptions(config), workers);
  try {
    const run = (seed: number) => generate(pool, "a red circle", { ...params, seed, preview: "none" });
    await timeJob(run(0)); // warm-up: each worker's first run
    await Promise.all([timeJob(run(0)), timeJob(run(1))]);
    emit({ metric: "pool_batch_speedup", ...(await batchSpeedup(run, runs)), workers, cores: os.availableParallelism() });
  } finally {
    await pool.close();
  }
}

async function engineMetrics(engine: Engine, runs: number, params: Partial<ImageParams>, emit: (m: Record<string, unknown>) => void): Promise<number> {
  const prompt = "a red circle";
  await timeJob(generate(engine, prompt, { ...params, seed: 0, preview: "none" })); // warm-up
  engine.stepMs.length = 0;
  const plain: number[] = [];
  const withPreview: number[] = [];
  const firstPreview: number[] = [];
  // Interleaved, so slow phases of a noisy machine hit both sides alike.
  for (let i = 0; i < runs; i++) {
    plain.push((await timeJob(generate(engine, prompt, { ...params, seed: i, preview: "none" }))).ms);
    const p = await timeJob(generate(engine, prompt, { ...params, seed: i, preview: "linear" }));
    withPreview.push(p.ms);
    if (p.firstPreviewMs !== null) firstPreview.push(p.firstPreviewMs);
  }
  const steps = [...engine.stepMs];
  const generateMs = median(plain);
  const resolved = resolveImageParams(engine.manifest, { ...params, seed: 0 }, "generate");
  const shape = { steps: resolved.steps, diffusionSteps: resolved.diffusionSteps, cfg: resolved.cfg, resolution: resolved.resolution };
  emit({ metric: "generate_ms", value: round(generateMs), runs, ...shape });
  emit({ metric: "preview_overhead", value: round(median(withPreview) / generateMs), runs });
  emit({ metric: "step_ms_p50", value: round(percentile(steps, 50)), steps: steps.length });
  emit({ metric: "step_ms_p99", value: round(percentile(steps, 99)), steps: steps.length });
  emit({ metric: "first_preview_ms", value: round(median(firstPreview)), runs });

  const batch = await batchSpeedup((seed) => generate(engine, prompt, { ...params, seed, preview: "none" }), runs);
  emit({ metric: "batch_speedup", ...batch });
  return generateMs;
}

/** The toolkit's reference sampler on the same weights and parameters, when torch is installed. */
function torchReference(engine: Engine, params: Partial<ImageParams>, runs: number): number | null {
  const python = "/usr/bin/python3";
  const models = fileURLToPath(new URL("../../models", import.meta.url));
  const source = engine.model.manifest.source;
  // The same weights in torch: the seeded random export, or the checkpoint the manifest names.
  const seed = /random weights, seed (\d+)/.exec(source);
  const checkpoint = /\bmodels\/(checkpoints\/\S+\.pt)\b/.exec(source);
  const weights = seed !== null ? ["--random-seed", seed[1]!] : checkpoint !== null && existsSync(path.join(models, checkpoint[1]!)) ? ["--weights", checkpoint[1]!] : null;
  if (!existsSync(python) || weights === null) return null;
  const p = resolveImageParams(engine.manifest, { ...params, seed: 0 }, "generate");
  const r = spawnSync(python, ["-m", "toolkit.bench", "--steps", String(p.steps), "--cfg", String(p.cfg), "--cfg-schedule", p.cfgSchedule, "--temperature", String(p.temperature), "--diffusion-steps", String(p.diffusionSteps), "--runs", String(runs), ...weights], {
    cwd: models,
    env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
    encoding: "utf8",
  });
  if (r.status !== 0) return null;
  return (JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { value: number }).value;
}

async function serverMetrics(config: Config, quick: boolean, params: Partial<ImageParams>, emit: (m: Record<string, unknown>) => void): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "unipic-bench-"));
  const app = await startApp({ ...config, port: 0, host: "127.0.0.1", dataDir: dir, databaseUrl: undefined, logLevel: "silent" });
  try {
    const key = app.adminKey ?? (await app.store.users.create("bench", { isAdmin: true })).apiKey;
    const user = (await app.store.users.byApiKey(key))!;
    // When the engine finished each step, as the runner hands it to the event hub.
    const producedAt = new Map<string, number>();
    const publish = app.services.turnHub.publish.bind(app.services.turnHub);
    app.services.turnHub.publish = (topic, event) => {
      if (event.producedAt !== undefined && event.step != null) producedAt.set(`${topic}:${event.step}`, event.producedAt);
      publish(topic, event);
    };
    const conv = await app.store.conversations.create(user.id, "bench");
    // As sendMessage does: store the turn, then hand it to the engine.
    const send = async (): Promise<string> => (await sendMessage(app.services, user, { conversationId: conv.id, text: "a red circle", imageIds: [], task: Task.GENERATE, params: { steps: params.steps, diffusionSteps: params.diffusionSteps, seed: 1 } })).assistant.id;
    const query = `subscription($id: ID!) { turnUpdated(id: $id) { kind step preview { step dataUrl } turn { status } } }`;
    const subscribe = (client: ReturnType<typeof createClient>, turnId: string, onStep: (step: number) => void): Promise<void> =>
      new Promise((resolve, reject) => {
        client.subscribe<{ turnUpdated: { kind: string; step: number | null; turn: { status: string } } }>(
          { query, variables: { id: toGlobalId("Turn", turnId) } },
          {
            next: (r) => {
              const e = r.data?.turnUpdated;
              if (e?.kind === "STEP" && e.step !== null) onStep(e.step);
              // The turn may have finished before this subscriber came: its snapshot is then final.
              if (e && ["COMPLETED", "FAILED", "CANCELLED"].includes(e.turn.status)) resolve();
            },
            error: reject,
            complete: resolve,
          },
        );
      });
    const newClient = () => createClient({ url: app.server.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` }, retryAttempts: 0 });

    // Preview latency with 50 subscribers on one turn, in a separate client process. The turn is
    // stored first and handed to the engine once every subscriber has its snapshot.
    const subscribers = quick ? 10 : 50;
    const { assistant } = (await app.store.turns.sendMessage(user.id, conv.id, { text: "a red circle", task: "GENERATE", kind: "generate", params: { ...params, seed: 2 }, seed: 2, imageIds: [] }))!;
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./bench-clients.ts", import.meta.url)), app.server.wsUrl, key, toGlobalId("Turn", assistant.id), String(subscribers)], { stdio: ["ignore", "pipe", "inherit"] });
    const latencies: number[] = [];
    await new Promise<void>((resolve, reject) => {
      let buffer = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line === "ready") app.services.runner!.enqueue(assistant);
          else if (line === "done") resolve();
          else {
            const { step, at } = JSON.parse(line) as { step: number; at: number };
            const produced = producedAt.get(`${assistant.id}:${step}`);
            if (produced !== undefined) latencies.push(at - produced);
          }
        }
      });
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`bench clients exited with ${code}`))));
    });
    emit({ metric: "preview_latency_ms_p50", value: round(percentile(latencies, 50)), subscribers, samples: latencies.length });
    emit({ metric: "preview_latency_ms_p99", value: round(percentile(latencies, 99)), subscribers, samples: latencies.length });

    // Throughput: 8 clients, each sending its next turn when the last one completed.
    const perClient = quick ? 1 : 3;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, async () => {
      const client = newClient();
      for (let i = 0; i < perClient; i++) {
        const id = await send();
        const finished = subscribe(client, id, () => undefined);
        await finished;
      }
      await client.dispose();
    }));
    const minutes = (performance.now() - t0) / 60_000;
    emit({ metric: "turns_per_min", value: round((8 * perClient) / minutes), clients: 8, turns: 8 * perClient });
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function runBench(argv: string[], config: Config = loadConfig()): Promise<number> {
  const p = parseArgs(argv, ["json", "quick", "no-torch", "server-only", "memory", "history", "scale", "soak"]);
  const quick = p.options.has("quick");
  const json = p.options.has("json");
  const emit = (m: Record<string, unknown>): void => console.log(json ? JSON.stringify(m) : `${String(m.metric).padEnd(24)} ${m.value}`);
  if (p.options.has("history")) {
    // History queries under load, at a small and a large history (bench-history.ts).
    await (await import("./bench-history.js")).historyMetrics(config, quick, emit);
    return 0;
  }
  if (p.options.has("memory")) {
    // Idle resident memory of `npm start` on each store, in servers of its own (bench-memory.ts).
    await (await import("./bench-memory.js")).memoryMetrics(emit, config.databaseUrl);
    return 0;
  }
  if (p.options.has("soak")) {
    // Mixed load on a server of its own for --minutes (default 30): memory, handles, leaks (bench-soak.ts).
    const minutes = numberOption(p, "minutes") ?? 30;
    if (!(minutes > 0)) throw AppError.badInput("--minutes", "a positive number of minutes", String(p.options.get("minutes")));
    await (await import("./bench-soak.js")).runSoak(config, minutes, emit);
    return 0;
  }
  if (p.options.has("scale")) {
    // The scaled-out mode against the single process (REDIS_URL, DATABASE_URL; bench-scale.ts).
    await (await import("./bench-scale.js")).runScaleBench(config, quick, emit);
    return 0;
  }
  const params: Partial<ImageParams> = quick ? { steps: 4, diffusionSteps: 5 } : {};
  const runs = quick ? 2 : 5;
  if (!p.options.has("server-only")) {
    const engine = await loadEngine(config);
    try {
      const generateMs = await engineMetrics(engine, runs, params, emit);
      emit(await flopsUtilisation(engine, params, quick ? 1 : 3, config.engineThreads));
      await poolMetrics(config, runs, params, emit);
      const torchMs = p.options.has("no-torch") ? null : torchReference(engine, params, quick ? 1 : 3);
      if (torchMs !== null) {
        emit({ metric: "torch_reference_ms", value: round(torchMs) });
        emit({ metric: "speedup_vs_torch", value: round(torchMs / generateMs) });
      }
    } finally {
      await engine.close();
    }
  }
  await serverMetrics(config, quick, params, emit);
  return 0;
}
