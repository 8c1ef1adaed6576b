/**
 * Subscription execution shared between identical subscribers.
 *
 * graphql-js executes a subscription's selection set once per subscriber for every event. When 50
 * clients watch one turn, each MAR step would run the same resolvers 50 times on the event loop,
 * and that queueing is what the last client's preview latency measures. The EventHub hands every
 * subscriber the same event object, so the result of executing one operation (same document,
 * operation name, variables and user) on it is the same for all of them: run it once and share it.
 *
 * Events created per subscriber (the first SNAPSHOT) are distinct objects and simply run alone.
 * The cache is a WeakMap on the event object: nothing outlives the event.
 */
import { createSourceEventStream, execute, print, type ExecutionArgs, type ExecutionResult } from "graphql";

type Result = ExecutionResult | Promise<ExecutionResult>;

function isAsyncIterable(v: unknown): v is AsyncIterable<unknown> {
  return typeof v === "object" && v !== null && Symbol.asyncIterator in v;
}

/**
 * A drop-in for graphql-ws's `subscribe` option. `who(args)` names the viewer (results of the same
 * operation may differ between users, so they are never shared across users).
 */
export function sharedSubscribe(who: (args: ExecutionArgs) => string) {
  const results = new WeakMap<object, Map<string, Result>>();

  return async (args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> => {
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source; // errors before the stream started
    // Once per subscription (graphql-ws parses every subscription's document anew).
    const key = JSON.stringify([who(args), args.operationName ?? null, args.variableValues ?? null, print(args.document)]);

    const run = (payload: unknown): Result => {
      if (typeof payload !== "object" || payload === null) return execute({ ...args, rootValue: payload });
      let byKey = results.get(payload);
      if (byKey === undefined) {
        byKey = new Map();
        results.set(payload, byKey);
      }
      let result = byKey.get(key);
      if (result === undefined) {
        result = execute({ ...args, rootValue: payload });
        byKey.set(key, result);
      }
      return result;
    };

    const it = source[Symbol.asyncIterator]();
    // A generator whose return() reaches the source's, so unsubscribing still cleans up the hub.
    const mapped: AsyncGenerator<ExecutionResult> = {
      async next() {
        const step = await it.next();
        return step.done ? { done: true, value: undefined } : { done: false, value: await run(step.value) };
      },
      async return() {
        await it.return?.();
        return { done: true, value: undefined };
      },
      async throw(error: unknown) {
        await it.return?.();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    } as AsyncGenerator<ExecutionResult>;
    return mapped;
  };
}
