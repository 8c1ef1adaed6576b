/**
 * `unipic bench --scale [--json] [--quick]`: what the scaled-out mode costs and gives, measured
 * on real processes (what an operator runs), one JSON object a line:
 * - first_preview_ms (mode single | redis): sendMessage sent -> its first preview at a graphql-ws
 *   client, median of several turns one at a time; single is `npm start` alone, redis an API
 *   node (ENGINE=off) and one `unipic worker`, so the difference is the Redis path's cost.
 * - worker_scaling: turns per minute from 8 clients (each sending its next turn when the last
 *   completed) with 2 workers over with 1, and both rates.
 * Needs REDIS_URL and DATABASE_URL (a fresh database is made next to it and dropped after).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Client } from "graphql-ws";
import { Redis } from "ioredis";
import pg from "pg";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import { BenchApi } from "./bench-api.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const round = (x: number): number => Math.round(x * 100) / 100;

interface Proc {
  child: ChildProcess;
  out: () => string;
}

/** Starts a process and resolves once its stdout matches `ready`. */
function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<Proc> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, LOG_LEVEL: "silent", HOST: "127.0.0.1", PORT: "0", ...env }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve({ child, out: () => out });
    });
    child.on("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}: ${out}`)));
  });
}

const MUTATIONS = {
  conversation: `mutation { createConversation(input: { title: "bench" }) { id } }`,
  send: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { assistantTurn { id } } }`,
  events: `subscription($id: ID!) { turnUpdated(id: $id) { kind preview { step } } }`,
};

/** One API node's address and key, and how to run turns on it. */
class Api extends BenchApi {
  /** Sends a turn and follows it; resolves with ms to the first preview and to the end. */
  async turn(client: Client, conversationId: string, params: Record<string, unknown>): Promise<{ firstPreviewMs: number | null; ms: number }> {
    const t0 = performance.now();
    const id = (await this.gql(MUTATIONS.send, { input: { conversationId, text: "a red circle above a blue square", params } })).sendMessage.assistantTurn.id as string;
    let firstPreviewMs: number | null = null;
    for await (const result of client.iterate<{ turnUpdated: { kind: string; preview: { step: number } | null } }>({ query: MUTATIONS.events, variables: { id } })) {
      const event = result.data!.turnUpdated;
      if (event.kind === "STEP" && event.preview !== null) firstPreviewMs ??= performance.now() - t0;
      if (["COMPLETED", "FAILED", "CANCELLED"].includes(event.kind)) break;
    }
    return { firstPreviewMs, ms: performance.now() - t0 };
  }
}

async function firstPreview(api: Api, runs: number, params: Record<string, unknown>): Promise<number> {
  const client = api.client();
  const conv = (await api.gql(MUTATIONS.conversation)).createConversation.id as string;
  await api.turn(client, conv, params); // warm-up: sessions, JIT, connections
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push((await api.turn(client, conv, params)).firstPreviewMs ?? NaN);
  await client.dispose();
  return median(times);
}

async function turnsPerMinute(api: Api, perClient: number, params: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      const client = api.client();
      const conv = (await api.gql(MUTATIONS.conversation)).createConversation.id as string;
      for (let i = 0; i < perClient; i++) await api.turn(client, conv, params);
      await client.dispose();
    }),
  );
  return (8 * perClient) / ((performance.now() - t0) / 60_000);
}

export async function runScaleBench(config: Config, quick: boolean, emit: (m: Record<string, unknown>) => void): Promise<void> {
  if (config.redisUrl === undefined || config.databaseUrl === undefined) {
    throw AppError.badInput("REDIS_URL", "REDIS_URL and DATABASE_URL set (bench --scale runs a deployment on them)", config.redisUrl === undefined ? "unset" : "DATABASE_URL unset");
  }
  const params = quick ? { steps: 4, diffusionSteps: 5 } : {};
  const runs = quick ? 3 : 5;
  const perClient = quick ? 2 : 4;
  const dbName = `unipic_bench_${randomBytes(4).toString("hex")}`;
  const prefix = `bench-${randomBytes(4).toString("hex")}`;
  const admin = async (sql: string): Promise<void> => {
    const c = new pg.Client({ connectionString: config.databaseUrl });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  const dbUrl = new URL(config.databaseUrl);
  dbUrl.pathname = `/${dbName}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), "unipic-bench-scale-"));
  const procs: Proc[] = [];
  const env = { ENGINE_THREADS: String(config.engineThreads), ENGINE_BATCH: String(config.engineBatch), MODEL_DIR: config.modelDir };
  const serve = async (extra: Record<string, string>): Promise<Api> => {
    const p = await start(["--import", "tsx", "src/main.ts"], { ...env, ...extra }, /npx unipic users add/);
    procs.push(p);
    const url = /listening on (http:\/\/\S+)\/graphql/.exec(p.out())![1]!;
    return new Api(url, /^API key: (\S+)$/m.exec(p.out())?.[1] ?? "");
  };
  const worker = async (): Promise<Proc> => {
    const p = await start(["bin/unipic.js", "worker"], { ...env, DATABASE_URL: dbUrl.toString(), REDIS_URL: config.redisUrl!, REDIS_PREFIX: prefix, DATA_DIR: dir }, /UniPic worker ready/);
    procs.push(p);
    return p;
  };
  try {
    // One process, embedded PGlite: today's mode.
    const single = await serve({ DATA_DIR: path.join(dir, "single"), DATABASE_URL: "", REDIS_URL: "" });
    const singleMs = await firstPreview(single, runs, params);
    emit({ metric: "first_preview_ms", value: round(singleMs), mode: "single", runs });
    const singleTpm = await turnsPerMinute(single, perClient, params);
    emit({ metric: "turns_per_min", value: round(singleTpm), mode: "single", clients: 8, turns: 8 * perClient });
    procs.pop()!.child.kill("SIGTERM");

    await admin(`create database "${dbName}"`);
    const api = await serve({ DATA_DIR: path.join(dir, "api"), DATABASE_URL: dbUrl.toString(), REDIS_URL: config.redisUrl, REDIS_PREFIX: prefix, ENGINE: "off" });
    await worker();
    const redisMs = await firstPreview(api, runs, params);
    emit({ metric: "first_preview_ms", value: round(redisMs), mode: "redis", runs, vs_single: round(redisMs / singleMs) });
    const one = await turnsPerMinute(api, perClient, params);
    await worker();
    const two = await turnsPerMinute(api, perClient, params);
    emit({ metric: "worker_scaling", value: round(two / one), turns_per_min_1: round(one), turns_per_min_2: round(two), clients: 8, turns: 8 * perClient, cores: os.availableParallelism() });
  } finally {
    for (const p of procs) p.child.kill("SIGTERM");
    await Promise.all(procs.map((p) => (p.child.exitCode === null ? new Promise((r) => p.child.once("exit", r)) : undefined)));
    await admin(`drop database if exists "${dbName}" with (force)`).catch(() => undefined);
    const redis = new Redis(config.redisUrl);
    for (const key of await redis.keys(`${prefix}:*`)) await redis.del(key);
    redis.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}
