/**
 * Redis connections (ioredis), for the scaled-out mode only: the one place that opens them.
 * Commands wait while Redis is away (no retry limit, offline queue on), so a short outage delays
 * events and jobs instead of losing them; ioredis reconnects and resubscribes by itself.
 */
import { Redis } from "ioredis";
import { AppError, ErrorCode } from "../errors.js";

export type RedisClient = Redis;

/** A connection named for `CLIENT LIST`; BullMQ needs maxRetriesPerRequest null for blocking pops. */
export function openRedis(url: string, name: string, log: (line: string) => void = () => undefined): Redis {
  const client = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: null,
    // Back off to at most 2 s between attempts, for ever: a node outlives a Redis restart.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
  });
  let down = false;
  client.on("error", (error: Error) => {
    if (!down) log(`redis (${name}): ${error.message}; reconnecting`);
    down = true;
  });
  client.on("ready", () => {
    if (down) log(`redis (${name}): reconnected`);
    down = false;
  });
  return client;
}

/** Resolves when the client is connected, or throws UNAVAILABLE naming REDIS_URL after `ms`. */
export async function waitReady(client: Redis, ms = 10_000): Promise<void> {
  if (client.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", ready);
      reject(new AppError(ErrorCode.UNAVAILABLE, `cannot reach Redis at REDIS_URL within ${ms} ms`));
    }, ms);
    const ready = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", ready);
  });
}

/** Is Redis answering now? (readiness; never waits on the offline queue for long) */
export async function pingRedis(client: Redis, ms = 1000): Promise<boolean> {
  return (await whileReachable(client, async () => (await client.ping()) === "PONG", ms)) ?? false;
}

/** Closes a connection, waiting for its pending replies when Redis answers. */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === "end") return;
  await client.quit().catch(() => client.disconnect());
}

/**
 * A read that a client waits on (a queue position, a scrape): its answer while Redis is
 * connected, and null (unknown) at once while it is away, slower than `ms`, or fails. Commands queue
 * offline until Redis returns (openRedis), which suits writes but would hang a reply for the
 * whole outage.
 */
export async function whileReachable<T>(client: Redis, read: () => Promise<T>, ms = 1000): Promise<T | null> {
  if (client.status !== "ready") return null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([read(), timeout]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
