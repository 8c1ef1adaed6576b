/**
 * The scaled-out queue and events against the real Redis (src/redis): fairness and positions
 * seen alike from two nodes, the reconciler, and turn events between two processes' hubs with
 * today's rules. No engine: the jobs are only looked at here; test/scale/cluster.test.ts runs
 * them on workers.
 */
import { Queue } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openRedis, closeRedis, type RedisClient } from "../../src/redis/connection.js";
import { redisEvents } from "../../src/redis/events.js";
import { QUEUE_NAME, type TurnJobData } from "../../src/redis/keys.js";
import { RedisTurnQueue } from "../../src/redis/turn-queue.js";
import { createStore, openDatabase, Task, TurnKind, type Database, type Store, type TurnRow } from "../../src/store/index.js";
import { createTurnEvents, TurnEventKind, type TurnEvents, type TurnHubEvent } from "../../src/turns/events.js";
import { dropPrefix, freshDatabase, freshPrefix, REDIS_URL, unreachable } from "./services.js";

const skip = await unreachable();
if (skip !== null) console.warn(`scale-out queue tests skipped: ${skip}`);

describe.skipIf(skip !== null)(`shared queue and events over Redis${skip === null ? "" : ` (skipped: ${skip})`}`, () => {
  const prefix = freshPrefix();
  const clients: RedisClient[] = [];
  const queues: Queue<TurnJobData>[] = [];
  const nodes: RedisTurnQueue[] = [];
  let dropDb: () => Promise<void>;
  let database: Database;
  let store: Store;

  function client(name: string): RedisClient {
    const c = openRedis(REDIS_URL, `test-${name}`);
    clients.push(c);
    return c;
  }

  /** One API node's view: its own connections, hubs and queue object. */
  async function node(name: string, maxQueue = 256): Promise<{ queue: RedisTurnQueue; events: TurnEvents }> {
    const redis = client(`${name}-cmd`);
    const events = createTurnEvents(redisEvents(client(`${name}-pub`), client(`${name}-sub`), prefix));
    const queue = new Queue<TurnJobData>(QUEUE_NAME, { connection: redis, prefix });
    queues.push(queue);
    const q = new RedisTurnQueue({ queue, redis, subscriber: client(`${name}-moves`), store, events, prefix, maxQueue, log: () => undefined });
    await q.start();
    nodes.push(q);
    return { queue: q, events };
  }

  async function turns(ownerId: string, n: number): Promise<TurnRow[]> {
    const conversation = await store.conversations.create(ownerId, "queue");
    const out: TurnRow[] = [];
    for (let i = 0; i < n; i++) {
      const sent = await store.turns.sendMessage(ownerId, conversation.id, { text: `a red circle ${i}`, task: Task.GENERATE, kind: TurnKind.GENERATE, params: {}, seed: i, imageIds: [] });
      out.push(sent!.assistant);
    }
    return out;
  }

  beforeAll(async () => {
    const db = await freshDatabase();
    dropDb = db.drop;
    database = await openDatabase({ databaseUrl: db.url, dataDir: "unused" });
    store = createStore(database);
  });

  afterAll(async () => {
    for (const n of nodes) n.close();
    for (const q of queues) await q.close();
    for (const c of clients) await closeRedis(c);
    await database?.close();
    await dropDb?.();
    await dropPrefix(prefix);
  });

  it("orders one user's burst behind another user's single turn, and both nodes see the same positions", async () => {
    const a = await node("a");
    const b = await node("b");
    const heavy = (await store.users.create("heavy")).user;
    const light = (await store.users.create("light")).user;
    const burst = await turns(heavy.id, 50);
    for (const turn of burst) await a.queue.add(turn);
    const [single] = await turns(light.id, 1);
    await a.queue.add(single!);

    const order = await a.queue.order();
    expect(order).toHaveLength(51);
    // Behind at most the heavy user's first turn (same rank, added earlier): one job, not fifty.
    expect(order.indexOf(single!.id)).toBeLessThanOrEqual(1);
    // The burst keeps its own order.
    expect(order.filter((id) => id !== single!.id)).toEqual(burst.map((t) => t.id));
    // Another node answers positions from the same queue.
    expect(await b.queue.queuePosition(single!.id)).toBe(await a.queue.queuePosition(single!.id));
    expect(await b.queue.queuePosition(burst.at(-1)!.id)).toBe(50);
    // Adding again (the reconciler and sendMessage both may) keeps one job.
    await b.queue.add(single!);
    expect(await b.queue.depth()).toBe(51);

    // A cancelled waiting job leaves the queue.
    b.queue.cancel(burst[10]!.id);
    await expect.poll(() => a.queue.queuePosition(burst[10]!.id)).toBeNull();
    expect(await a.queue.depth()).toBe(50);
  });

  it("the reconciler enqueues a committed turn that has no job, once", async () => {
    const { queue } = await node("c");
    const user = (await store.users.create("lost")).user;
    const [lost] = await turns(user.id, 1);
    expect(await queue.queuePosition(lost!.id)).toBeNull(); // committed, never enqueued (a crash)
    expect(await queue.reconcile(0)).toBeGreaterThanOrEqual(1);
    expect(await queue.queuePosition(lost!.id)).not.toBeNull();
    const depth = await queue.depth();
    expect(await queue.reconcile(0)).toBe(0); // it has its job now
    expect(await queue.depth()).toBe(depth);
    // A turn that waits less than the grace period is left to sendMessage's own enqueue.
    const [fresh] = await turns(user.id, 1);
    await queue.reconcile(60_000);
    expect(await queue.queuePosition(fresh!.id)).toBeNull();
  });

  it("delivers one node's turn events to another's subscribers: snapshot first, latest preview, TOKEN text whole, finals kept", async () => {
    const sender = await node("sender");
    const watcher = await node("watcher");
    const user = (await store.users.create("events")).user;
    const [turn] = await turns(user.id, 1);
    const stream = watcher.events.turnHub.subscribe(turn!.id, async () => [{ kind: TurnEventKind.SNAPSHOT, turn: (await store.turns.getById(turn!.id))! }]);
    const first = await stream.next(); // subscribed on Redis before the snapshot was read
    expect(first.value?.kind).toBe("SNAPSHOT");
    expect(first.value?.turn.createdAt).toBeInstanceOf(Date);

    const publish = (e: Omit<TurnHubEvent, "turn">): void => sender.events.turnHub.publish(turn!.id, { turn: turn!, ...e });
    for (let step = 1; step <= 5; step++) publish({ kind: TurnEventKind.STEP, step, totalSteps: 5, coalesceKey: "step" });
    let text = "";
    for (const delta of ["a ", "red ", "circle"]) {
      text += delta;
      sender.events.turnHub.publish(turn!.id, { kind: TurnEventKind.TOKEN, turn: { ...turn!, text }, delta, coalesceKey: "token" });
    }
    publish({ kind: TurnEventKind.COMPLETED });
    // The subscriber reads nothing until everything has arrived (a slow client).
    const rest: TurnHubEvent[] = [];
    await expect.poll(async () => {
      const next = await stream.next();
      if (!next.done) rest.push(next.value);
      return rest.at(-1)?.kind;
    }).toBe("COMPLETED");
    await stream.return(undefined);
    const steps = rest.filter((e) => e.kind === "STEP");
    expect(steps.at(-1)?.step).toBe(5); // the newest preview arrives, whatever was merged
    expect(rest.filter((e) => e.kind === "TOKEN").map((e) => e.delta).join("")).toBe("a red circle");
    expect(rest.filter((e) => e.kind === "COMPLETED")).toHaveLength(1);
    expect(rest.at(-1)?.kind).toBe("COMPLETED");
  });
});
