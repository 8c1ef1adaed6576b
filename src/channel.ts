/**
 * A one-consumer async queue, the one such primitive in the code: producers push, one consumer
 * iterates `drain()`. Items keep their order; the end is normal (close) or an error the
 * consumer's loop throws (fail). Returning early from the iterator calls `onReturn`, as
 * graphql-ws does for subscriptions (the engine cancels the job, the event hub drops the
 * subscriber). An engine job's events (engine, worker proxy, pool) run through one, and so does
 * each subscriber's copy of a turn's events, which passes `coalesce` so that a slow reader gets
 * a newer progress event in place of an unread one instead of a growing backlog.
 */
export class Channel<T> {
  private readonly items: T[] = [];
  private ended = false;
  private error: unknown = undefined;
  private waiter: (() => void) | undefined;

  /**
   * `coalesce(unread, incoming)` may return one item that stands for both: the unread item is
   * then removed and the merged one queued at the end (after any item pushed in between, so the
   * order stays causal). Undefined queues the incoming item as it is.
   */
  constructor(private readonly coalesce?: (unread: T, incoming: T) => T | undefined) {}

  push(item: T): void {
    if (this.ended) return;
    let queued = item;
    if (this.coalesce !== undefined) {
      for (let i = 0; i < this.items.length; i++) {
        const merged = this.coalesce(this.items[i]!, item);
        if (merged === undefined) continue;
        this.items.splice(i, 1);
        queued = merged;
        break;
      }
    }
    this.items.push(queued);
    this.wake();
  }

  close(): void {
    this.ended = true;
    this.wake();
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.error = error;
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** The items until the end (those queued before close() included). */
  drain(onReturn: () => void = () => undefined): AsyncGenerator<T, void, undefined> {
    const self = this;
    async function* run(): AsyncGenerator<T, void, undefined> {
      for (;;) {
        const item = self.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (self.ended) {
          if (self.error !== undefined) throw self.error;
          return;
        }
        await new Promise<void>((resolve) => (self.waiter = resolve));
      }
    }
    const gen = run();
    const original = gen.return.bind(gen);
    gen.return = (value) => {
      // The consumer stopped listening before the end.
      if (!self.ended) onReturn();
      return original(value);
    };
    return gen;
  }
}
