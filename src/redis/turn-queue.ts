/**
 * The scaled-out TurnQueue (src/turns/queue.ts): committed turns become BullMQ jobs in Redis that
 * any worker process may take (src/redis/worker.ts). Used by API nodes.
 *
 * - Idempotent: the job id is the turn id, so the reconciler and `sendMessage` may both enqueue a
 *   turn and one job exists; a worker runs a turn only while it is unfinished in the store.
 * - Order: BullMQ priority (lower runs first) = the turn's priority level, then its rank among its
 *   user's waiting turns (1 for a user with none waiting): one user's fifty queued turns
 *   delay another user's single turn by at most one job of theirs, not fifty.
 * - Positions: this node publishes QUEUED events with positions to its own subscribers whenever
 *   a worker takes a job (the `moved` channel), so they stay right across nodes.
 */
import { Queue } from "bullmq";
import { AppError, ErrorCode } from "../errors.js";
import type { Store, TurnRow } from "../store/index.js";
import { publishTurnStatus, TurnEventKind, type TurnEvents } from "../turns/events.js";
import type { TurnQueue } from "../turns/queue.js";
import { whileReachable, type RedisClient } from "./connection.js";
import { fairKey, keys, liveWorkers, QUEUE_NAME, type TurnJobData } from "./keys.js";

/** Priority levels a turn may have (0 = normal, the API's only one today; higher runs first). */
const PRIORITY_LEVELS = 8;
/** BullMQ priorities stop at 2^21; each level gets 2^18 ranks. */
const RANKS = 1 << 18;

/** The user's rank: one more than their last waiting turn's, or 1 (atomic across nodes). */
const FAIR_RANK = `
local top = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local rank = 1
if top[2] then rank = tonumber(top[2]) + 1 end
redis.call('ZADD', KEYS[1], rank, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return rank`;

export function bullPriority(priority: number, rank: number): number {
  const level = Math.min(PRIORITY_LEVELS - 1, Math.max(0, Math.trunc(priority)));
  return (PRIORITY_LEVELS - 1 - level) * RANKS + Math.min(rank, RANKS - 1);
}

export interface RedisQueueDeps {
  queue: Queue<TurnJobData>;
  redis: RedisClient;
  /** A connection in subscriber mode for the `moved` channel. */
  subscriber: RedisClient;
  store: Store;
  events: TurnEvents;
  prefix: string;
  /** Jobs that may wait at most (MAX_QUEUE_LENGTH): beyond, a turn ends FAILED with QUEUE_FULL. */
  maxQueue: number;
  log: (line: string) => void;
}

export class RedisTurnQueue implements TurnQueue {
  private refresh: NodeJS.Timeout | undefined;
  private readonly onMessage = (channel: string): void => {
    if (channel !== keys(this.deps.prefix).moved || this.refresh !== undefined) return;
    // Debounced: a batch of jobs taken at once costs one read of the queue.
    this.refresh = setTimeout(() => {
      this.refresh = undefined;
      void this.publishPositions().catch((error: unknown) => this.deps.log(`queue: positions: ${String(error)}`));
    }, 50);
  };

  constructor(private readonly deps: RedisQueueDeps) {
    deps.subscriber.on("message", this.onMessage);
  }

  /** Starts receiving queue moves (resolves once subscribed). */
  async start(): Promise<void> {
    await this.deps.subscriber.subscribe(keys(this.deps.prefix).moved);
  }

  enqueue(turn: TurnRow): void {
    // A failure here leaves the turn QUEUED in the store: the reconciler enqueues it later.
    void this.add(turn).catch((error: unknown) => this.deps.log(`queue: turn ${turn.id} not enqueued yet: ${(error as Error)?.message ?? String(error)}`));
  }

  /** Adds the turn's job (no-op when it exists); QUEUE_FULL ends the turn FAILED. */
  async add(turn: TurnRow, priority = 0): Promise<void> {
    const { queue, redis, store, events, prefix, maxQueue } = this.deps;
    const userId = await store.turns.ownerOf(turn.id);
    if (userId === null) return; // deleted meanwhile
    if ((await queue.getJob(turn.id)) === undefined && (await queue.getJobCountByTypes("wait", "prioritized")) >= maxQueue) {
      const error = new AppError(ErrorCode.QUEUE_FULL, `the queue is full (${maxQueue} jobs waiting); try again shortly`);
      const row = await store.turns.setStatus(turn.id, "FAILED", { errorCode: error.code, errorMessage: error.message });
      if (row !== null) publishTurnStatus(events, row);
      return;
    }
    const rank = Number(await redis.eval(FAIR_RANK, 1, fairKey(prefix, userId), turn.id, String(24 * 3600 * 1000)));
    await queue.add("turn", { turnId: turn.id, userId }, { jobId: turn.id, priority: bullPriority(priority, rank) });
    await redis.publish(keys(prefix).moved, "added");
  }

  cancel(turnId: string): void {
    void this.remove(turnId).catch((error: unknown) => this.deps.log(`queue: cancel ${turnId}: ${(error as Error)?.message ?? String(error)}`));
  }

  /** Takes a waiting job out of the queue, and tells whichever worker runs it to stop. */
  private async remove(turnId: string): Promise<void> {
    const { queue, redis, prefix } = this.deps;
    await redis.publish(keys(prefix).cancel, turnId);
    const job = await queue.getJob(turnId);
    if (job === undefined) return;
    // An active job is locked by its worker (which the message above stops); a waiting one goes.
    if ((await job.getState()) !== "active") await job.remove().catch(() => undefined);
    await redis.zrem(fairKey(prefix, job.data.userId), turnId);
    await redis.publish(keys(prefix).moved, "removed");
  }

  /** Waiting job ids, next first: the `wait` list (jobs moved back by a worker), then by priority. */
  async order(): Promise<string[]> {
    const { queue } = this.deps;
    return [...(await queue.getRanges(["wait"], 0, -1, true)), ...(await queue.getRanges(["prioritized"], 0, -1, true))];
  }

  /** Null when not waiting, and while Redis is away (unknown): a reply never waits for Redis to return. */
  async queuePosition(turnId: string): Promise<number | null> {
    const order = await whileReachable(this.deps.redis, () => this.order());
    const at = order?.indexOf(turnId) ?? -1;
    return at < 0 ? null : at;
  }

  /** Jobs waiting now (for /metrics); null while Redis is away. */
  async depth(): Promise<number | null> {
    return whileReachable(this.deps.redis, () => this.deps.queue.getJobCountByTypes("wait", "prioritized"));
  }

  /** QUEUED events with positions and ETAs for the turns this node's subscribers follow. */
  private async publishPositions(): Promise<void> {
    const { events, store, redis, prefix } = this.deps;
    const watched = new Set(events.turnHub.localTopics());
    if (watched.size === 0) return;
    const order = await this.order();
    const workers = await liveWorkers(redis, prefix);
    const capacity = workers.reduce((n, w) => n + w.concurrency, 0);
    const jobMs = workers.map((w) => w.averageJobMs).filter((ms): ms is number => ms !== null);
    const average = jobMs.length === 0 ? null : jobMs.reduce((a, b) => a + b, 0) / jobMs.length;
    for (const [position, turnId] of order.entries()) {
      if (!watched.has(turnId)) continue;
      const turn = await store.turns.getById(turnId);
      if (turn === null || turn.status !== "QUEUED") continue;
      // Jobs ahead run `capacity` at a time: this one starts after that many rounds.
      const etaMs = average === null || capacity === 0 ? null : Math.round(Math.ceil((position + 1) / capacity) * average);
      events.turnHub.deliver(turnId, { kind: TurnEventKind.QUEUED, turn, queuePosition: position, etaMs, coalesceKey: "queue" });
    }
  }

  /**
   * The reconciler: every unfinished turn older than `graceMs` whose job is missing or ended
   * (a crash between commit and enqueue, a lost Redis) gets its job; a turn left RUNNING without
   * a job goes back to QUEUED first. Returns how many were enqueued.
   */
  async reconcile(graceMs = 5000): Promise<number> {
    const { queue, store, events } = this.deps;
    let enqueued = 0;
    const before = Date.now() - graceMs;
    for (const turn of await store.turns.unfinished()) {
      if (turn.createdAt.getTime() > before) continue;
      const job = await queue.getJob(turn.id);
      const state = job === undefined ? null : await job.getState();
      if (state !== null && state !== "completed" && state !== "failed" && state !== "unknown") continue;
      if (job !== undefined) await job.remove().catch(() => undefined);
      let row: TurnRow | null = turn;
      if (turn.status === "RUNNING") {
        row = await store.turns.setStatus(turn.id, "QUEUED");
        if (row !== null) publishTurnStatus(events, row);
      }
      if (row === null) continue;
      await this.add(row);
      enqueued += 1;
    }
    return enqueued;
  }

  close(): void {
    clearTimeout(this.refresh);
    this.deps.subscriber.off("message", this.onMessage);
  }
}
