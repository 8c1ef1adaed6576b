/**
 * The one queue between a committed turn and the engine that runs it. The turn service hands
 * every stored reply here and never learns which implementation it has:
 * - in process (no REDIS_URL): `EngineRunner` (runner.ts) runs the turn on the local engine
 *   pool, whose admission queue (src/engine/queue.ts) orders jobs by priority, then round robin
 *   between users;
 * - scaled out (REDIS_URL): `RedisTurnQueue` (src/redis/turn-queue.ts) adds a BullMQ job that
 *   any worker process may take; the worker runs it with the same `EngineRunner`.
 */
import type { TurnRow } from "../store/index.js";

export interface TurnQueue {
  /** Called once the turn is committed; must not throw (failures are written to the turn). */
  enqueue(turn: TurnRow): void;
  /** Stops a queued or running job, wherever it waits or runs; the caller has written CANCELLED. */
  cancel(turnId: string): void;
  /** Jobs ahead of this one (0 = next), or null when it is not waiting or not known here. */
  queuePosition(turnId: string): Promise<number | null>;
}

/** What a shared queue tells operators (/readyz, /metrics); absent in one process. */
export interface QueueStats {
  /** Is the queue's store (Redis) answering? */
  reachable(): Promise<boolean>;
  /** Jobs waiting; null while the queue's store is unreachable (as for the reads below). */
  depth(): Promise<number | null>;
  /** Live workers: each one's jobs now and finished since it started. */
  workers(): Promise<Array<{ id: string; active: number; done: number; concurrency: number }> | null>;
  /** Jobs put back in the queue after their worker stopped answering. */
  stalledRecoveries(): Promise<number | null>;
}
