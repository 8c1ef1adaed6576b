/**
 * Turn and conversation events across processes: Redis pub/sub through
 * `@graphql-yoga/redis-event-target`, one channel per turn or conversation. Each process keeps
 * its own hubs (src/turns/events.ts) and so today's per-subscriber rules (snapshot first,
 * latest-wins previews, TOKEN deltas joined, status events never merged); Redis only carries
 * each published event once to every process that has a subscriber for its topic. Redis delivers
 * one connection's messages in order, so one worker's events for a turn keep their order.
 */
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { AppError, ErrorCode } from "../errors.js";
import type { ConversationHubEvent, HubTransport, TurnHubEvent } from "../turns/events.js";
import type { RedisClient } from "./connection.js";

/** How long a new subscription waits for Redis before it fails with UNAVAILABLE. */
const LISTEN_TIMEOUT_MS = 5000;

/** JSON that keeps Dates (turn and conversation rows hold them) through the round trip. */
const serializer = {
  stringify(message: unknown): string {
    return JSON.stringify(message, function (this: Record<string, unknown>, key, value: unknown) {
      const raw = this[key];
      return raw instanceof Date ? { $date: raw.getTime() } : value;
    });
  },
  parse(message: string): unknown {
    return JSON.parse(message, (_key, value: unknown) =>
      value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 1 && typeof (value as { $date?: unknown }).$date === "number"
        ? new Date((value as { $date: number }).$date)
        : value,
    );
  },
};

export interface RedisEvents {
  turn: HubTransport<TurnHubEvent>;
  conversation: HubTransport<ConversationHubEvent>;
}

/**
 * Transports for both hubs. `publisher` is a normal connection; `subscriber` is put in
 * subscriber mode (only this module uses it). `prefix` namespaces the channels.
 */
export function redisEvents(publisher: RedisClient, subscriber: RedisClient, prefix: string): RedisEvents {
  const target = createRedisEventTarget({ publishClient: publisher, subscribeClient: subscriber, serializer });
  function transport<E>(kind: string): HubTransport<E> {
    const listeners = new Map<string, (event: { detail: unknown }) => void>();
    const channel = (topic: string): string => `${prefix}:events:${kind}:${topic}`;
    return {
      send(topic, event) {
        // The target reads only `type` and `detail` (it publishes detail, serialized, on channel type).
        target.dispatchEvent({ type: channel(topic), detail: event } as unknown as CustomEvent);
      },
      async listen(topic, deliver) {
        const listener = (event: { detail: unknown }): void => deliver(event.detail as E);
        listeners.set(topic, listener);
        target.addEventListener(channel(topic), listener);
        // Commands on one connection run in order: once this PING answers, SUBSCRIBE has too.
        // Commands wait while Redis is away; a subscriber is told so (UNAVAILABLE) instead.
        let timer: NodeJS.Timeout | undefined;
        const away = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${LISTEN_TIMEOUT_MS} ms`)), LISTEN_TIMEOUT_MS);
        });
        try {
          await Promise.race([subscriber.ping(), away]);
        } catch (error) {
          throw new AppError(ErrorCode.UNAVAILABLE, "the event service (Redis) is not reachable; try again shortly", { cause: error, retryAfterMs: 1000 });
        } finally {
          clearTimeout(timer);
        }
      },
      unlisten(topic) {
        const listener = listeners.get(topic);
        if (listener === undefined) return;
        listeners.delete(topic);
        target.removeEventListener(channel(topic), listener);
      },
    };
  }
  return { turn: transport<TurnHubEvent>("turn"), conversation: transport<ConversationHubEvent>("conversation") };
}
