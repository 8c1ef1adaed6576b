/**
 * Scale-out end to end (issue 15, item 5), against the real Redis and PostgreSQL: two API nodes
 * with ENGINE=off and two workers (`npx unipic worker`), each its own process on loopback.
 * 40 turns from 8 clients are sent through node A and followed through node B; one worker is
 * killed with SIGKILL while it holds jobs. Every turn completes once, its previews reach B, and
 * each image is byte-identical to what a single process makes from the same seed. A job enqueued
 * through A is cancelled through B. Skipped, saying why, when Redis or PostgreSQL is unreachable.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../src/redis/keys.js";
import { createStore, openDatabase, type Database } from "../../src/store/index.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, isFinalTurnEvent, subscription, wsClient } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";
import { spawnServer, spawnWorker, type ServerProcess, type Worker } from "../helpers/process.js";
import { WAIT_MS } from "../helpers/wait.js";
import { dropPrefix, freshDatabase, freshPrefix, REDIS_URL, unreachable } from "./services.js";

const skip = await unreachable();
if (skip !== null) console.warn(`scale-out cluster test skipped: ${skip}`);

const TURN_EVENTS = `subscription($id: ID!) {
  turnUpdated(id: $id) { kind step preview { dataUrl } turn { id status text seed outputImages { sha256 } } }
}`;
const CLIENTS = 8;
const TURNS_EACH = 5;
const FAST = { steps: 4, diffusionSteps: 5 };
const PROMPTS = ["a red circle", "a blue square above a green triangle", "a yellow star", "two purple circles", "an orange square left of a red circle"];

describe.skipIf(skip !== null)(`two API nodes and two workers over Redis${skip === null ? "" : ` (skipped: ${skip})`}`, () => {
  const prefix = freshPrefix();
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let dropDb: () => Promise<void>;
  let database: Database;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;
  let adminKey: string;
  const workers: Worker[] = [];
  /** (prompt, seed) -> sha256 made by the cluster. */
  const made = new Map<string, string>();

  const dir = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), "unipic-scale-"));
    dirs.push(d);
    return d;
  };

  beforeAll(async () => {
    const db = await freshDatabase();
    dropDb = db.drop;
    env = { DATABASE_URL: db.url, REDIS_URL, REDIS_PREFIX: prefix, ENGINE_THREADS: "1", ENGINE_BATCH: "4" };
    // Both API nodes start together on the empty database: one admin, its key printed once.
    [a, b] = await Promise.all([spawnServer({ ...env, ENGINE: "off", DATA_DIR: dir() }), spawnServer({ ...env, ENGINE: "off", DATA_DIR: dir() })]);
    children.push(a.child, b.child);
    const keysPrinted = [a, b].map((n) => n.apiKey).filter((k): k is string => k !== null);
    expect(keysPrinted).toHaveLength(1);
    adminKey = keysPrinted[0]!;
    for (let i = 0; i < 2; i++) {
      const data = dir();
      const w = await spawnWorker({ ...env, DATA_DIR: data }, path.join(data, "worker.log"));
      workers.push(w);
      children.push(w.child);
    }
    database = await openDatabase({ databaseUrl: db.url, dataDir: "unused" });
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await database?.close();
    await dropDb?.();
    await dropPrefix(prefix);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("runs 40 turns from 8 clients sent through A and followed through B; a worker killed mid-job loses none", async () => {
    const store = createStore(database);
    const users = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => store.users.create(`client-${i}`)));
    const redis = new Redis(REDIS_URL);
    try {
      const followed: Array<Promise<any[]>> = [];
      const sockets = users.map((u) => wsClient(b.wsUrl, u.apiKey));
      let stepSeen = false;
      await Promise.all(
        users.map(async (u, i) => {
          const conv = (await gqlOk(a.url, u.apiKey, CREATE_CONVERSATION, { title: `client ${i}` })).createConversation.id;
          for (let j = 0; j < TURNS_EACH; j++) {
            const seed = 1000 + i * TURNS_EACH + j;
            const sent = await gqlOk(a.url, u.apiKey, SEND_MESSAGE, { input: { conversationId: conv, text: PROMPTS[j]!, params: { ...FAST, seed } } });
            const id = sent.sendMessage.assistantTurn.id;
            followed.push(
              collect(subscription(sockets[i]!, TURN_EVENTS, { id }), {
                until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated),
                onItem: (e) => (stepSeen ||= e.turnUpdated.kind === "STEP"),
                timeoutMs: 3 * WAIT_MS,
              }).then((evs) => evs.map((e) => e.turnUpdated)),
            );
          }
        }),
      );

      // Once jobs run, kill -9 a worker that holds some (its registry entry names its pid).
      let victim: Worker | undefined;
      await expect
        .poll(async () => {
          if (!stepSeen) return undefined;
          for (const json of Object.values(await redis.hgetall(keys(prefix).workers))) {
            const state = JSON.parse(json) as { id: string; active: number };
            const pid = state.id.split(":")[1];
            if (state.active > 0) victim ??= workers.find((w) => String(w.child.pid) === pid);
          }
          return victim;
        })
        .toBeDefined();
      victim!.child.kill("SIGKILL");
      await victim!.exited;

      let finished = 0;
      for (const f of followed) void f.then(() => (finished += 1), () => undefined);
      const progress = setInterval(() => console.log(`cluster: ${finished}/${followed.length} turns final, ${Math.round(performance.now() / 1000)} s`), 15_000);
      const streams = await Promise.all(followed).finally(() => clearInterval(progress));
      await Promise.all(sockets.map((s) => s.dispose()));
      expect(streams).toHaveLength(CLIENTS * TURNS_EACH);
      let requeued = 0;
      let withPreviews = 0;
      for (const events of streams) {
        // The last event is COMPLETED, or the SNAPSHOT of a turn that had finished before the
        // client (which subscribes once sendMessage answered) was subscribed.
        const last = events.at(-1)!;
        expect(last.turn.status).toBe("COMPLETED");
        expect(last.turn.outputImages).toHaveLength(1);
        expect(events.filter((e) => e.kind === "COMPLETED").length).toBeLessThanOrEqual(1);
        // Previews of a job enqueued through A, made on a worker, seen on B by every client that
        // was subscribed when the job ran.
        const previews = events.filter((e) => e.kind === "STEP" && typeof e.preview?.dataUrl === "string" && e.preview.dataUrl.startsWith("data:image/png"));
        if (events.some((e) => e.kind === "RUNNING")) expect(previews.length).toBeGreaterThan(0);
        if (previews.length > 0) withPreviews += 1;
        // The killed worker's turns went back to QUEUED (seen after the turn was RUNNING: in a
        // RUNNING event, a STEP, or the SNAPSHOT of a client that subscribed late) and ran again.
        const running = events.findIndex((e) => e.turn.status === "RUNNING");
        if (running >= 0 && events.slice(running + 1).some((e) => e.kind === "QUEUED")) requeued += 1;
        made.set(String(last.turn.seed), last.turn.outputImages[0].sha256);
      }
      expect(withPreviews).toBeGreaterThan(0);
      expect(requeued).toBeGreaterThanOrEqual(1);

      // In the database: 40 replies, each COMPLETED once with one image; no turn added or lost.
      const counts = await store.turns.countByStatus();
      expect(counts.COMPLETED).toBe(CLIENTS * TURNS_EACH);
      expect((counts.QUEUED ?? 0) + (counts.RUNNING ?? 0) + (counts.FAILED ?? 0)).toBe(0);
      // The recovery is counted for operators.
      const metrics = await (await fetch(`${a.url}/metrics`, { headers: { authorization: `Bearer ${adminKey}` } })).text();
      expect(Number(/^unipic_stalled_job_recoveries_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      expect(metrics).toMatch(/^unipic_queue_depth 0/m);
    } finally {
      redis.disconnect();
    }
  });

  it("cancels through B a job enqueued through A, on whichever worker holds it", async () => {
    const conv = (await gqlOk(a.url, adminKey, CREATE_CONVERSATION, { title: "cancel" })).createConversation.id;
    const sent = await gqlOk(a.url, adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: "a red circle", params: { steps: 32, diffusionSteps: 20, seed: 5 } } });
    const id = sent.sendMessage.assistantTurn.id;
    const client = wsClient(b.wsUrl, adminKey);
    let cancelled: Promise<number> | undefined;
    let latest = 0;
    const events = (
      await collect(subscription(client, TURN_EVENTS, { id }), {
        until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated),
        onItem: (e) => {
          if (e.turnUpdated.kind === "STEP") latest = e.turnUpdated.step;
          if (e.turnUpdated.kind === "STEP" && cancelled === undefined) {
            cancelled = gqlOk(b.url, adminKey, `mutation($id: ID!) { cancelTurn(id: $id) { status } }`, { id }).then(() => latest);
          }
        },
      })
    ).map((e) => e.turnUpdated);
    await client.dispose();
    const stepAtCancel = await cancelled!;
    expect(events.at(-1).kind).toBe("CANCELLED");
    expect(events.at(-1).turn.status).toBe("CANCELLED");
    // Nothing after the final event, and the job did not run on to its end.
    expect(Math.max(...events.filter((e) => e.kind === "STEP").map((e) => e.step))).toBeLessThan(32);
    expect(stepAtCancel).toBeLessThan(32);
  });

  it("SIGTERM hands a worker's running job back: it runs again on another worker and completes", async () => {
    const data = dir();
    const fresh = await spawnWorker({ ...env, DATA_DIR: data }, path.join(data, "worker.log"));
    workers.push(fresh);
    children.push(fresh.child);
    const redis = new Redis(REDIS_URL);
    try {
      const conv = (await gqlOk(a.url, adminKey, CREATE_CONVERSATION, { title: "hand back" })).createConversation.id;
      const sent = await gqlOk(a.url, adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: "a yellow star", params: { steps: 32, diffusionSteps: 20, seed: 9 } } });
      const id = sent.sendMessage.assistantTurn.id;
      const client = wsClient(b.wsUrl, adminKey);
      let holder: Worker | undefined;
      let asked = false;
      // Once the job runs, SIGTERM the worker holding it (its registry entry names its pid).
      // Workers report every 2 s: ask until one says it holds a job.
      const stopHolder = async (): Promise<void> => {
        await expect
          .poll(async () => {
            for (const json of Object.values(await redis.hgetall(keys(prefix).workers))) {
              const state = JSON.parse(json) as { id: string; active: number };
              const w = workers.find((x) => String(x.child.pid) === state.id.split(":")[1] && x.child.exitCode === null && x.child.signalCode === null);
              if (state.active > 0 && w !== undefined) holder ??= w;
            }
            return holder;
          }, { interval: 100 })
          .toBeDefined();
        holder!.child.kill("SIGTERM");
      };
      const events = (
        await collect(subscription(client, TURN_EVENTS, { id }), {
          until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated),
          onItem: (e) => {
            if (e.turnUpdated.kind !== "STEP" || asked) return;
            asked = true;
            void stopHolder();
          },
          timeoutMs: 3 * WAIT_MS,
        })
      ).map((e) => e.turnUpdated);
      await client.dispose();
      expect(holder).toBeDefined();
      expect(await holder!.exited).toBe(0); // it stopped cleanly, not by the force timer
      const running = events.findIndex((e) => e.turn.status === "RUNNING");
      expect(running).toBeGreaterThanOrEqual(0);
      expect(events.slice(running + 1).some((e) => e.kind === "QUEUED")).toBe(true);
      expect(events.at(-1).kind).toBe("COMPLETED");
      expect(events.at(-1).turn.outputImages).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });

  it("made each image byte for byte as one process makes it from the same seed", async () => {
    expect(made.size).toBe(CLIENTS * TURNS_EACH);
    const single = await spawnServer({ DATA_DIR: dir(), ENGINE: "on", ENGINE_THREADS: "1", ENGINE_BATCH: "4", DATABASE_URL: "", REDIS_URL: "" });
    children.push(single.child);
    const conv = (await gqlOk(single.url, single.apiKey!, CREATE_CONVERSATION, { title: "reference" })).createConversation.id;
    const client = wsClient(single.wsUrl, single.apiKey!);
    const finals = await Promise.all(
      [...made.keys()].map(async (seedText) => {
        const seed = Number(seedText);
        const j = (seed - 1000) % TURNS_EACH;
        const sent = await gqlOk(single.url, single.apiKey!, SEND_MESSAGE, { input: { conversationId: conv, text: PROMPTS[j]!, params: { ...FAST, seed } } });
        const evs = await collect(subscription(client, TURN_EVENTS, { id: sent.sendMessage.assistantTurn.id }), { until: (e) => isFinalTurnEvent(e.at(-1)?.turnUpdated), timeoutMs: 3 * WAIT_MS });
        return [seedText, evs.at(-1)!.turnUpdated.turn.outputImages[0]?.sha256] as const;
      }),
    );
    await client.dispose();
    single.child.kill("SIGTERM");
    expect(new Map(finals)).toEqual(made);
  });
});
