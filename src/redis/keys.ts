/**
 * The names the scaled-out mode uses in Redis, all under REDIS_PREFIX, and the workers' registry:
 * each worker writes its state into one hash every HEARTBEAT_MS; an entry older than
 * WORKER_TTL_MS is a worker that is gone (killed processes cannot remove their own entry).
 */
import type { RedisClient } from "./connection.js";

/** The BullMQ queue of turns (its keys are `${prefix}:turns:*`). */
export const QUEUE_NAME = "turns";

export const HEARTBEAT_MS = 2000;
export const WORKER_TTL_MS = 10_000;

/** What a job carries: the turn row is the truth, the job only points at it. */
export interface TurnJobData {
  turnId: string;
  userId: string;
}

export function keys(prefix: string) {
  return {
    /** Pub/sub: a job was added, taken or removed (API nodes refresh their watchers' positions). */
    moved: `${prefix}:queue:moved`,
    /** Pub/sub: a turn id whose job must stop, wherever it runs. */
    cancel: `${prefix}:queue:cancel`,
    /** Hash: worker id -> its state (WorkerState, JSON). */
    workers: `${prefix}:workers`,
    /** Counter: jobs moved back to the queue after their worker stopped answering. */
    stalled: `${prefix}:stats:stalled`,
  };
}

/** Sorted set: a user's waiting turns by rank (fairness; turn-queue.ts). */
export function fairKey(prefix: string, userId: string): string {
  return `${prefix}:fair:${userId}`;
}

export interface WorkerState {
  id: string;
  /** Jobs it runs at once (ENGINE_BATCH x ENGINE_WORKERS). */
  concurrency: number;
  /** Jobs it holds now. */
  active: number;
  /** Jobs it has finished since it started. */
  done: number;
  averageJobMs: number | null;
  /** When it last wrote this, ms since the epoch. */
  at: number;
}

/** Workers that wrote their state within WORKER_TTL_MS; older entries are removed. */
export async function liveWorkers(redis: RedisClient, prefix: string): Promise<WorkerState[]> {
  const all = await redis.hgetall(keys(prefix).workers);
  const now = Date.now();
  const live: WorkerState[] = [];
  for (const [id, json] of Object.entries(all)) {
    let state: WorkerState | null = null;
    try {
      state = JSON.parse(json) as WorkerState;
    } catch {
      // a malformed entry is treated like a dead worker's
    }
    if (state !== null && now - state.at <= WORKER_TTL_MS) live.push(state);
    else await redis.hdel(keys(prefix).workers, id);
  }
  return live;
}
