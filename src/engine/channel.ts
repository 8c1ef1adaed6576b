/**
 * A one-consumer event channel between the engine loop and a job's caller. Events are kept in
 * order (the API layer decides what a slow client may skip); the end is either normal or an
 * error the consumer's loop throws. Returning early from the iterator calls `onReturn`
 * (the engine cancels the job), as graphql-ws does for subscriptions.
 */
export class Channel<T> {
  private readonly items: T[] = [];
  private ended = false;
  private error: unknown = undefined;
  private waiter: (() => void) | undefined;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
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

  drain(onReturn: () => void): AsyncGenerator<T, void, undefined> {
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
      // The consumer stopped listening before the end: that is a cancellation.
      if (!self.ended) onReturn();
      return original(value);
    };
    return gen;
  }
}
