/**
 * A scaled-out engine worker: takes turn jobs from the shared BullMQ queue and runs each with the
 * same EngineRunner as the single process (src/turns/runner.ts), from the stored turn alone.
 * - Batching: it holds up to ENGINE_BATCH x ENGINE_WORKERS jobs at once; the local engine pool
 *   batches them (continuous batching, as in one process).
 * - Stalled jobs: a worker renews its jobs' locks every LOCK_MS / 2; when one is killed, another
 *   worker's stalled check (every STALLED_MS) puts its jobs back in the queue, so they run again
 *   within LOCK_MS + STALLED_MS (20 s) from their stored seed, giving the same bytes.
 * - Cancel: `cancelTurn` on any API node publishes the turn id; the worker holding it stops it
 *   within one MAR step.
 * - SIGTERM (`close`): running jobs are handed back (their turns go back to QUEUED, their jobs to
 *   the queue at once) rather than left to the stalled check.
 */
import { Worker, WaitingError, type Job } from "bullmq";
import type { EngineRunner } from "../turns/runner.js";
import type { Store } from "../store/index.js";
import type { RedisClient } from "./connection.js";
import { fairKey, HEARTBEAT_MS, keys, QUEUE_NAME, type TurnJobData, type WorkerState } from "./keys.js";

const LOCK_MS = 10_000;
const STALLED_MS = 10_000;

export interface TurnWorkerDeps {
  id: string;
  /** A connection BullMQ duplicates for its blocking pop. */
  connection: RedisClient;
  redis: RedisClient;
  /** A connection in subscriber mode for the cancel channel. */
  subscriber: RedisClient;
  prefix: string;
  runner: EngineRunner;
  store: Store;
  concurrency: number;
  averageJobMs: () => number | null;
  log: (line: string) => void;
}

export class TurnWorker {
  private worker: Worker<TurnJobData> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing = false;
  private active = 0;
  private done = 0;
  private readonly onCancel = (channel: string, turnId: string): void => {
    if (channel === keys(this.deps.prefix).cancel) this.deps.runner.cancel(turnId);
  };

  constructor(private readonly deps: TurnWorkerDeps) {}

  async start(): Promise<void> {
    const { connection, subscriber, prefix, concurrency, log } = this.deps;
    subscriber.on("message", this.onCancel);
    await subscriber.subscribe(keys(prefix).cancel);
    this.worker = new Worker<TurnJobData>(QUEUE_NAME, (job, token, signal) => this.process(job, token, signal), {
      connection,
      prefix,
      concurrency,
      lockDuration: LOCK_MS,
      stalledInterval: STALLED_MS,
      // A job whose workers keep dying is failed after this many recoveries (its turn stays
      // QUEUED in the store until the reconciler gives it a new job).
      maxStalledCount: 5,
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 24 * 3600 },
    });
    this.worker.on("stalled", (jobId: string) => {
      log(`worker: job ${jobId} stalled (its worker stopped answering): back in the queue`);
      void this.deps.redis.incr(keys(prefix).stalled).catch(() => undefined);
    });
    this.worker.on("error", (error: Error) => log(`worker: ${error.message}`));
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat().catch(() => undefined), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private async beat(): Promise<void> {
    const state: WorkerState = { id: this.deps.id, concurrency: this.deps.concurrency, active: this.active, done: this.done, averageJobMs: this.deps.averageJobMs(), at: Date.now() };
    await this.deps.redis.hset(keys(this.deps.prefix).workers, this.deps.id, JSON.stringify(state));
  }

  private async process(job: Job<TurnJobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    const { redis, prefix, runner, store } = this.deps;
    const { turnId, userId } = job.data;
    this.active += 1;
    // Report at once (not only every HEARTBEAT_MS): /metrics and operators see who holds what.
    void this.beat().catch(() => undefined);
    // Shutdown aborts every job: hand it back. (cancelTurn arrives on the cancel channel.)
    const abort = (): void => void runner.cancel(turnId, "handBack");
    signal?.addEventListener("abort", abort);
    try {
      await redis.zrem(fairKey(prefix, userId), turnId);
      await redis.publish(keys(prefix).moved, "taken");
      await runner.runStored(turnId);
      if (this.closing && (await store.turns.getById(turnId))?.status === "QUEUED") {
        await job.moveToWait(token);
        throw new WaitingError();
      }
      this.done += 1;
    } finally {
      signal?.removeEventListener("abort", abort);
      this.active -= 1;
      if (!this.closing) void this.beat().catch(() => undefined);
    }
  }

  /** Hands back running jobs, stops taking new ones and leaves the registry. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    this.worker?.cancelAllJobs("shutting down: handed back");
    await this.worker?.close();
    this.deps.subscriber.off("message", this.onCancel);
    await this.deps.redis.hdel(keys(this.deps.prefix).workers, this.deps.id).catch(() => undefined);
  }
}
