/**
 * A node of a scaled-out deployment (REDIS_URL set): its Redis connections, turn events over
 * Redis pub/sub, and, as configured, the API side of the queue (RedisTurnQueue and its
 * reconciler) and a worker that runs jobs on this process's engine (TurnWorker).
 * app.ts builds an API node from it (`npm start`; ENGINE=off for no worker), worker.ts a worker
 * only (`npx unipic worker`).
 */
import { hostname } from "node:os";
import { randomUUID } from "node:crypto";
import { Queue } from "bullmq";
import type { Config } from "../config.js";
import type { EngineClient } from "../engine/types.js";
import type { Store } from "../store/index.js";
import { createTurnEvents, type TurnEvents } from "../turns/events.js";
import type { QueueStats } from "../turns/queue.js";
import { EngineRunner } from "../turns/runner.js";
import { closeRedis, openRedis, pingRedis, waitReady, whileReachable, type RedisClient } from "./connection.js";
import { redisEvents } from "./events.js";
import { keys, liveWorkers, QUEUE_NAME, type TurnJobData } from "./keys.js";
import { RedisTurnQueue } from "./turn-queue.js";
import { TurnWorker } from "./worker.js";

/** How often an API node looks for committed turns without a job. */
export const RECONCILE_MS = 30_000;

export interface ScaledNodeOptions {
  config: Config & { redisUrl: string };
  store: Store;
  /** Set: this node also runs jobs on it. */
  engine: EngineClient | null;
  /** The API side: enqueue, positions, cancel, reconciler. */
  api: boolean;
  log: (line: string) => void;
}

export interface ScaledNode {
  events: TurnEvents;
  queue: RedisTurnQueue | null;
  worker: TurnWorker | null;
  stats: QueueStats;
  /** Stops taking jobs and hands running ones back (SIGTERM), then closes the connections. */
  close(): Promise<void>;
}

export async function startScaledNode(opts: ScaledNodeOptions): Promise<ScaledNode> {
  const { config, store, engine, api, log } = opts;
  const prefix = config.redisPrefix;
  const role = api ? (engine === null ? "api" : "api+worker") : "worker";
  const clients: RedisClient[] = [];
  const open = (name: string): RedisClient => {
    const client = openRedis(config.redisUrl, `unipic-${role}-${name}`, log);
    clients.push(client);
    return client;
  };
  const redis = open("commands");
  const timers: NodeJS.Timeout[] = [];
  let queue: Queue<TurnJobData> | undefined;
  let turnQueue: RedisTurnQueue | null = null;
  let worker: TurnWorker | null = null;
  try {
    await waitReady(redis);
    const subscriber = open("events");
    const events = createTurnEvents(redisEvents(open("publish"), subscriber, prefix));
    if (api) {
      queue = new Queue<TurnJobData>(QUEUE_NAME, { connection: redis, prefix });
      turnQueue = new RedisTurnQueue({ queue, redis, subscriber: open("moves"), store, events, prefix, maxQueue: config.limits.maxQueueLength, log });
      await turnQueue.start();
      const q = turnQueue;
      const reconcile = (): void =>
        void q.reconcile().then(
          (n) => (n > 0 ? log(`reconciler: enqueued ${n} committed turn(s) that had no job`) : undefined),
          (error: unknown) => log(`reconciler: ${(error as Error)?.message ?? String(error)}`),
        );
      reconcile();
      const timer = setInterval(reconcile, RECONCILE_MS);
      timer.unref();
      timers.push(timer);
    }
    if (engine !== null) {
      const runner = new EngineRunner({ store, events, engine, log, queueEvents: false });
      worker = new TurnWorker({
        id: `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
        connection: open("worker"),
        redis,
        subscriber: open("cancel"),
        prefix,
        runner,
        store,
        concurrency: config.engineBatch * config.engineWorkers,
        averageJobMs: () => engine.averageJobMs ?? null,
        log,
      });
      await worker.start();
    }
    const stats: QueueStats = {
      // Each read answers null (unknown) at once while Redis is away: a scrape never hangs.
      reachable: () => pingRedis(redis),
      depth: async () => {
        const q = queue;
        return q === undefined ? 0 : whileReachable(redis, () => q.getJobCountByTypes("wait", "prioritized"));
      },
      workers: () => whileReachable(redis, () => liveWorkers(redis, prefix)),
      stalledRecoveries: () => whileReachable(redis, async () => Number((await redis.get(keys(prefix).stalled)) ?? 0)),
    };
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        for (const timer of timers) clearInterval(timer);
        await worker?.close();
        turnQueue?.close();
        events.turnHub.closeAll();
        events.conversationHub.closeAll();
        await queue?.close();
        for (const client of clients) await closeRedis(client);
      })());
    return { events, queue: turnQueue, worker, stats, close };
  } catch (error) {
    for (const timer of timers) clearInterval(timer);
    await worker?.close().catch(() => undefined);
    await queue?.close().catch(() => undefined);
    for (const client of clients) client.disconnect();
    throw error;
  }
}
