/**
 * Per-user quotas and rate limits (USER_TURNS_PER_MINUTE, USER_QUEUED_TURNS, USER_STORED_BYTES):
 * checked where turns and uploads are admitted, the same for GraphQL over HTTP and WebSocket and
 * for the /v1 routes, since they all store turns through `sendMessage` and uploads through one
 * function. Admins are exempt. A refusal is RATE_LIMITED (waiting helps: `retryAfterMs`) or
 * QUOTA_EXCEEDED (it does not: `retryAfterMs` null).
 *
 * One user's admissions are serialised (check, then store, then count), so concurrent requests
 * cannot slip past a limit together. The per-minute window lives in this process's memory (the
 * server is one process; a restart forgets it); queued turns and stored bytes are read from the
 * database, so they hold across restarts.
 */
import type { Quotas } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Store, UserRow } from "../store/index.js";

export type QuotaLimit = "turns_per_minute" | "queued_turns" | "stored_bytes";

export const QUOTA_LIMITS: readonly QuotaLimit[] = ["turns_per_minute", "queued_turns", "stored_bytes"];

const WINDOW_MS = 60_000;
/** The retry hint for a full per-user queue before any job's run time was measured. */
const DEFAULT_JOB_MS = 1_000;

export interface QuotaDeps {
  quotas: Quotas;
  store: Pick<Store, "turns" | "images">;
  /** A job's measured run time (the engine's moving average), for the queued-turns retry hint. */
  jobMs?: () => number | null | undefined;
  now?: () => number;
}

export class QuotaGuard {
  readonly limits: Quotas;
  /** Refusals since start, by limit (for /metrics). */
  readonly refusals: Record<QuotaLimit, number> = { turns_per_minute: 0, queued_turns: 0, stored_bytes: 0 };
  private readonly store: QuotaDeps["store"];
  private readonly jobMs: () => number | null | undefined;
  private readonly now: () => number;
  /** Per user: when their replies of the last minute were admitted, oldest first. */
  private readonly started = new Map<string, number[]>();
  /** Per user: the tail of their admissions in progress. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(deps: QuotaDeps) {
    this.limits = deps.quotas;
    this.store = deps.store;
    this.jobMs = deps.jobMs ?? (() => null);
    this.now = deps.now ?? Date.now;
  }

  /**
   * Admits `count` model replies for the user, then runs `store` (which stores them) while no
   * other admission of theirs runs. `makesImages`: the replies will store images (generate, edit).
   */
  async admitTurns<T>(user: UserRow, count: number, makesImages: boolean, store: () => Promise<T>): Promise<T> {
    if (user.isAdmin) return store();
    return this.exclusive(user.id, async () => {
      const now = this.now();
      const recent = this.recent(user.id, now);
      const { turnsPerMinute, queuedTurns, storedBytes } = this.limits;
      if (turnsPerMinute > 0) {
        if (count > turnsPerMinute) throw this.tooMany("turns_per_minute", count, `at most ${turnsPerMinute} model replies a minute (USER_TURNS_PER_MINUTE)`);
        if (recent.length + count > turnsPerMinute) {
          // The oldest admissions must leave the window until `count` more fit.
          const frees = recent[recent.length + count - turnsPerMinute - 1]! + WINDOW_MS;
          throw this.refuse("turns_per_minute", ErrorCode.RATE_LIMITED, frees - now, `rate limited: at most ${turnsPerMinute} model replies a minute per user`, {
            expected: `at most ${turnsPerMinute} model replies a minute (USER_TURNS_PER_MINUTE)`,
            got: `${recent.length + count}`,
          });
        }
      }
      if (queuedTurns > 0) {
        if (count > queuedTurns) throw this.tooMany("queued_turns", count, `at most ${queuedTurns} model replies waiting or running at once (USER_QUEUED_TURNS)`);
        const active = await this.store.turns.activeCount(user.id);
        if (active + count > queuedTurns) {
          // Waiting turns free places as they finish: about one job's time per place wanted.
          const wanted = active + count - queuedTurns;
          const retry = wanted * (this.jobMs() ?? DEFAULT_JOB_MS);
          throw this.refuse("queued_turns", ErrorCode.RATE_LIMITED, retry, `rate limited: at most ${queuedTurns} model replies waiting or running at once per user`, {
            expected: `at most ${queuedTurns} model replies waiting or running at once (USER_QUEUED_TURNS)`,
            got: `${active} waiting or running, ${count} more asked`,
          });
        }
      }
      if (storedBytes > 0 && makesImages) {
        const held = await this.store.images.bytesHeldBy(user.id);
        if (held >= storedBytes) throw this.storageFull(held, 0);
      }
      const result = await store();
      if (turnsPerMinute > 0) this.started.set(user.id, [...recent, ...Array<number>(count).fill(now)]);
      return result;
    });
  }

  /** Admits an upload of `bytes` (image `imageId`, not yet the user's), then runs `store`. */
  async admitUpload<T>(user: UserRow, imageId: string, bytes: number, store: () => Promise<T>): Promise<T> {
    const limit = this.limits.storedBytes;
    if (user.isAdmin || limit === 0) return store();
    return this.exclusive(user.id, async () => {
      // An image the user already holds is counted once: uploading it again adds nothing.
      if (!(await this.store.images.visibleTo(user.id, imageId))) {
        const held = await this.store.images.bytesHeldBy(user.id);
        if (held + bytes > limit) throw this.storageFull(held, bytes);
      }
      return store();
    });
  }

  /** The user's admission times within the window ending `now` (older ones are forgotten). */
  private recent(userId: string, now: number): number[] {
    const kept = (this.started.get(userId) ?? []).filter((t) => t > now - WINDOW_MS);
    if (kept.length > 0) this.started.set(userId, kept);
    else this.started.delete(userId);
    return kept;
  }

  private storageFull(held: number, adding: number): AppError {
    const limit = this.limits.storedBytes;
    return this.refuse("stored_bytes", ErrorCode.QUOTA_EXCEEDED, null, `quota exceeded: images stored for this user may take at most ${limit} bytes; delete conversations to free space`, {
      expected: `at most ${limit} bytes of images (USER_STORED_BYTES)`,
      got: adding > 0 ? `${held} bytes held, ${adding} more` : `${held} bytes held`,
    });
  }

  /** More replies in one request than the limit allows at all: no wait makes it pass. */
  private tooMany(limit: QuotaLimit, count: number, expected: string): AppError {
    this.refusals[limit]++;
    return AppError.limit("replies", expected, `${count} replies in one request`);
  }

  private refuse(limit: QuotaLimit, code: ErrorCode, retryAfterMs: number | null, message: string, details: { expected: string; got: string }): AppError {
    this.refusals[limit]++;
    const retry = retryAfterMs === null ? null : Math.max(1, Math.ceil(retryAfterMs));
    const hint = retry === null ? "" : `; try again in ${(retry / 1000).toFixed(1)} s`;
    return new AppError(code, `${message}${hint}`, { ...details, retryAfterMs: retry });
  }

  /** Runs `fn` after the user's earlier admissions, and before their later ones. */
  private async exclusive<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const before = this.locks.get(userId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.locks.set(userId, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(userId) === tail) this.locks.delete(userId);
    }
  }
}
