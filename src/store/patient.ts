/**
 * A store that waits out a database restart: a call that fails because the database cannot be
 * reached (UNAVAILABLE, see util.ts `isUnreachable`) is tried again, with backoff, until the
 * database answers or the patience runs out. Any other error passes at once.
 * For the turn runner: a job runs in memory while PostgreSQL restarts, and its writes (status,
 * result image, its link to the turn) are idempotent, so trying them again loses nothing and
 * stores nothing twice. Request handlers keep the plain store and answer UNAVAILABLE at once:
 * a client is never held waiting on a database that is down.
 */
import { ErrorCode, isAppError } from "../errors.js";
import type { Store } from "./types.js";

export interface PatienceOptions {
  /** How long one call keeps trying (default 10 minutes: a restart takes seconds, a failover minutes). */
  patienceMs?: number;
  /** Told once per call that starts waiting, and once when it gets through. */
  log?: (line: string) => void;
  /** For tests: the wait between tries (default: 50 ms doubling to 2 s). */
  sleep?: (ms: number) => Promise<void>;
}

const FIRST_WAIT_MS = 50;
const MAX_WAIT_MS = 2000;

function unavailable(error: unknown): boolean {
  return isAppError(error) && error.code === ErrorCode.UNAVAILABLE;
}

/** `store` with every method of every repository retried while the database is unreachable. */
export function patientStore(store: Store, options: PatienceOptions = {}): Store {
  const patienceMs = options.patienceMs ?? 10 * 60_000;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const log = options.log ?? (() => undefined);

  async function attempt<T>(name: string, call: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + patienceMs;
    let wait = FIRST_WAIT_MS;
    let waited = false;
    for (;;) {
      try {
        const result = await call();
        if (waited) log(`store: ${name} got through once the database was back`);
        return result;
      } catch (error) {
        if (!unavailable(error) || Date.now() + wait > deadline) throw error;
        if (!waited) log(`store: ${name}: the database is unreachable; trying again for up to ${Math.round(patienceMs / 1000)} s`);
        waited = true;
        await sleep(wait);
        wait = Math.min(MAX_WAIT_MS, wait * 2);
      }
    }
  }

  const wrap = <G extends object>(group: string, repo: G): G => {
    const out: Record<string, unknown> = {};
    for (const [name, fn] of Object.entries(repo)) {
      out[name] = typeof fn === "function" ? (...args: unknown[]) => attempt(`${group}.${name}`, () => fn(...args)) : fn;
    }
    return out as G;
  };

  return {
    users: wrap("users", store.users),
    conversations: wrap("conversations", store.conversations),
    turns: wrap("turns", store.turns),
    images: wrap("images", store.images),
  };
}
