/**
 * sharedSubscribe: identical subscriptions execute each shared event once; different operations,
 * variables or users never share; per-subscriber events run alone; return() reaches the source.
 */
import { GraphQLObjectType, GraphQLSchema, GraphQLString, parse, type ExecutionArgs, type ExecutionResult } from "graphql";
import { describe, expect, it } from "vitest";
import { sharedSubscribe } from "../../src/api/shared-subscribe.js";
import { Channel } from "../../src/channel.js";

interface Ev {
  n: number;
}

function setup() {
  let resolved = 0;
  let returned = 0;
  const feeds: Array<(e: Ev | undefined) => void> = [];
  // Each subscriber gets its own source generator fed from `publish`, as the EventHub does.
  function source(): AsyncGenerator<Ev> {
    const channel = new Channel<Ev>();
    feeds.push((e) => (e === undefined ? channel.close() : channel.push(e)));
    return (async function* () {
      try {
        yield* channel.drain();
      } finally {
        returned++;
      }
    })();
  }
  const Event = new GraphQLObjectType({
    name: "Event",
    fields: {
      text: {
        type: GraphQLString,
        args: { prefix: { type: GraphQLString } },
        resolve: (e: Ev, a: { prefix?: string }, ctx: { user: string }) => {
          resolved++;
          return `${a.prefix ?? ""}${ctx.user}:${e.n}`;
        },
      },
    },
  });
  const schema = new GraphQLSchema({
    query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } }),
    subscription: new GraphQLObjectType({
      name: "Subscription",
      fields: { events: { type: Event, subscribe: () => source(), resolve: (e: Ev) => e } },
    }),
  });
  const subscribe = sharedSubscribe((args) => (args.contextValue as { user: string }).user);
  const open = async (user: string, query: string, variableValues?: Record<string, unknown>) =>
    (await subscribe({ schema, document: parse(query), contextValue: { user }, variableValues } as ExecutionArgs)) as AsyncGenerator<ExecutionResult>;
  const publish = (e: Ev | undefined) => feeds.forEach((f) => f(e));
  const publishEach = (n: number) => feeds.forEach((f) => f({ n })); // a new object per subscriber
  return { open, publish, publishEach, resolvedCount: () => resolved, returnedCount: () => returned };
}

describe("sharedSubscribe", () => {
  it("executes a shared event once for identical subscriptions, apart for other users, variables and documents", async () => {
    const s = setup();
    const q = `subscription($p: String) { events { text(prefix: $p) } }`;
    const subs = [
      await s.open("ann", q, { p: ">" }),
      await s.open("ann", q, { p: ">" }),
      await s.open("ann", q, { p: ">" }),
      await s.open("bob", q, { p: ">" }), // another user
      await s.open("ann", q, { p: "#" }), // other variables
      await s.open("ann", `subscription { events { text } }`), // another document
    ];
    const pending = subs.map((it) => it.next());
    s.publish({ n: 1 }); // one object for everyone, as the hub publishes
    const got = (await Promise.all(pending)).map((r) => (r.value as ExecutionResult).data);
    expect(got).toEqual([
      { events: { text: ">ann:1" } }, { events: { text: ">ann:1" } }, { events: { text: ">ann:1" } },
      { events: { text: ">bob:1" } }, { events: { text: "#ann:1" } }, { events: { text: "ann:1" } },
    ]);
    expect(s.resolvedCount()).toBe(4); // not 6
  });

  it("runs distinct event objects separately, and return() ends the source", async () => {
    const s = setup();
    const q = `subscription { events { text } }`;
    const a = await s.open("ann", q);
    const b = await s.open("ann", q);
    const [ra, rb] = [a.next(), b.next()];
    s.publish({ n: 2 });
    await Promise.all([ra, rb]);
    expect(s.resolvedCount()).toBe(1);
    // Equal content in two objects is two events (a per-subscriber snapshot, say): two executions.
    const [rc, rd] = [a.next(), b.next()];
    s.publishEach(3);
    expect((await Promise.all([rc, rd])).map((r) => (r.value as ExecutionResult).data)).toEqual([{ events: { text: "ann:3" } }, { events: { text: "ann:3" } }]);
    expect(s.resolvedCount()).toBe(3);
    await a.return(undefined);
    await b.return(undefined);
    expect(s.returnedCount()).toBe(2);
  });
});
