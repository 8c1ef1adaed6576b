/**
 * The one way tests read a stream to the end, or to the point they care about: engine job
 * events, a graphql-ws subscription (helpers/app.ts `subscription`), a channel, a hub.
 */
import { WAIT_MS } from "./wait.js";

export interface CollectOptions<T> {
  /** Stop (and return the source, as a client that unsubscribes) once this holds. */
  until?: (items: T[]) => boolean;
  /** Sees each item as it comes, to act in the middle of the stream. */
  onItem?: (item: T, items: T[]) => void;
  /** Default WAIT_MS: a generous limit for server work, reached only when something is wrong. */
  timeoutMs?: number;
}

/** The items of `source` until it ends or `until` holds; rejects with the source's error, or on timeout naming what came. */
export async function collect<T>(source: AsyncIterable<T>, options: CollectOptions<T> = {}): Promise<T[]> {
  const { until, onItem, timeoutMs = WAIT_MS } = options;
  const items: T[] = [];
  const it = source[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms with ${items.length} items: ${JSON.stringify(items).slice(0, 500)}`)), timeoutMs);
  });
  let timedOut = false;
  try {
    for (;;) {
      const step = await Promise.race([it.next(), timeout]).catch((error: unknown) => {
        timedOut = (error as Error)?.message?.startsWith("timed out") ?? false;
        throw error;
      });
      if (step.done) return items;
      items.push(step.value);
      onItem?.(step.value, items);
      if (until?.(items)) return [...items]; // a copy: items still in flight must not change the result
    }
  } finally {
    clearTimeout(timer);
    // A generator with a next() pending would queue return() behind it: do not wait for it then.
    if (timedOut) void it.return?.();
    else await it.return?.();
  }
}
