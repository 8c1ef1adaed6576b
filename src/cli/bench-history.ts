/**
 * `unipic bench --history [--quick]`: history queries under load (issue 14, item 5). One user
 * gets CONVERSATIONS conversations and one of them TURNS turns (inserted in bulk); then 50
 * graphql clients on loopback page through them at random depths at once, over HTTP. Lines
 * `history_conversations_ms_p50/p99` (the user's conversation list, 20 a page, after a cursor)
 * and `history_turns_ms_p50/p99` (a conversation's turns, the last 20 before a cursor), at a
 * small history and at the full one: flat figures mean the indexes hold (the plan is printed:
 * conversations_owner_created_idx, turns_conversation_position_uq).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { conversationCursor, toGlobalId, turnCursor } from "../api/ids.js";
import { startApp, type App } from "../app.js";
import type { Config } from "../config.js";
import { conversations, turns } from "../store/schema.js";

const CLIENTS = 50;
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const round = (x: number): number => Math.round(x * 100) / 100;

const CONVERSATIONS_PAGE = `query($after: String) { conversations(first: 20, after: $after) { nodes { id title } pageInfo { endCursor hasNextPage } } }`;
const TURNS_PAGE = `query($id: ID!, $before: String) { conversation(id: $id) { turns(last: 20, before: $before) { nodes { id position role status text } pageInfo { hasPreviousPage } } } }`;

/** Adds conversations (and, to the first, turns) until the user has `convs` and it has `count` turns. */
async function seed(app: App, userId: string, convs: number, count: number): Promise<{ convIds: Array<{ id: string; createdAt: Date }>; bigId: string }> {
  const { orm } = app.database;
  const existing = await orm.select({ id: conversations.id, createdAt: conversations.createdAt }).from(conversations).where(sql`${conversations.ownerId} = ${userId}`);
  for (let i = existing.length; i < convs; i += 500) {
    const rows = Array.from({ length: Math.min(500, convs - i) }, (_, k) => ({ ownerId: userId, title: `history ${i + k}`, createdAt: new Date(Date.UTC(2025, 0, 1) + (i + k) * 60_000) }));
    existing.push(...(await orm.insert(conversations).values(rows).returning({ id: conversations.id, createdAt: conversations.createdAt })));
  }
  const big = existing.reduce((a, b) => (a.createdAt < b.createdAt ? a : b));
  const counted = (await orm.execute(sql`select count(*)::int as n from turns where conversation_id = ${big.id}`)) as unknown as { rows: Array<{ n: number }> };
  const n = counted.rows[0]!.n;
  for (let p = Number(n) + 1; p <= count; p += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - p + 1) }, (_, k) => {
      const position = p + k;
      const user = position % 2 === 1;
      return { conversationId: big.id, position, role: user ? ("user" as const) : ("assistant" as const), kind: "generate" as const, task: "GENERATE" as const, text: user ? `a red circle ${position}` : "", status: user ? ("COMPLETED" as const) : ("COMPLETED" as const), seed: position };
    });
    await orm.insert(turns).values(rows);
  }
  // The statistics a running server has by then (autovacuum on PostgreSQL, the periodic ANALYZE
  // on PGlite): measured right after a bulk insert, the planner would still think the tables empty.
  await orm.execute(sql`analyze`);
  return { convIds: existing, bigId: big.id };
}

async function gql(url: string, key: string, query: string, variables: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) }).catch((error: Error) => {
    throw new Error(`history bench request failed: ${String((error.cause as Error | undefined)?.message ?? error.message)}`, { cause: error });
  });
  const body = (await res.json()) as { errors?: unknown[] };
  if (body.errors !== undefined) throw new Error(`history bench query failed: ${JSON.stringify(body.errors).slice(0, 300)}`);
  return performance.now() - t0;
}

/** `clients` clients, each `perClient` random-depth pages of one kind, all at once; their latencies. */
async function load(url: string, key: string, perClient: number, page: () => [string, Record<string, unknown>], clients = CLIENTS): Promise<number[]> {
  const times: number[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) times.push(await gql(url, key, ...page()));
    }),
  );
  return times;
}

/** The plan the database runs, with its actual rows and time (EXPLAIN ANALYZE). */
async function plan(app: App, query: ReturnType<typeof sql>): Promise<string> {
  const { rows } = (await app.database.orm.execute(sql`explain analyze ${query}`)) as unknown as { rows: Array<Record<string, string>> };
  return rows.map((r) => Object.values(r)[0]).join(" | ").replace(/\s+/g, " ").slice(0, 600);
}

export async function historyMetrics(config: Config, quick: boolean, emit: (m: Record<string, unknown>) => void): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "unipic-bench-history-"));
  const app = await startApp({ ...config, port: 0, host: "127.0.0.1", dataDir: dir, logLevel: "silent", engineEnabled: false });
  try {
    const { user, apiKey } = await app.store.users.create(`history-${Date.now()}`);
    const sizes = quick ? [[20, 200], [200, 2000]] : [[20, 200], [1000, 10000]];
    let last = { convIds: [] as Array<{ id: string; createdAt: Date }>, bigId: "" };
    const perClient = quick ? 4 : 20;
    for (const [convs, count] of sizes as Array<[number, number]>) {
      const { convIds, bigId } = (last = await seed(app, user.id, convs, count));
      const store = app.database.kind;
      const sized = { conversations: convs, turns: count, clients: CLIENTS, store };
      const convTimes = await load(app.server.url, apiKey, perClient, () => {
        const c = convIds[Math.floor(Math.random() * convIds.length)]!;
        return [CONVERSATIONS_PAGE, { after: conversationCursor(c.createdAt, c.id) }];
      });
      emit({ metric: "history_conversations_ms_p50", value: round(percentile(convTimes, 50)), ...sized, samples: convTimes.length });
      emit({ metric: "history_conversations_ms_p99", value: round(percentile(convTimes, 99)), ...sized, samples: convTimes.length });
      const turnTimes = await load(app.server.url, apiKey, perClient, () => [TURNS_PAGE, { id: toGlobalId("Conversation", bigId), before: turnCursor(1 + Math.floor(Math.random() * count)) }]);
      emit({ metric: "history_turns_ms_p50", value: round(percentile(turnTimes, 50)), ...sized, samples: turnTimes.length });
      emit({ metric: "history_turns_ms_p99", value: round(percentile(turnTimes, 99)), ...sized, samples: turnTimes.length });
      // One client alone: what a page costs, without 49 others queued in front of it.
      const alone = await load(app.server.url, apiKey, 2 * perClient, () => [TURNS_PAGE, { id: toGlobalId("Conversation", bigId), before: turnCursor(1 + Math.floor(Math.random() * count)) }], 1);
      emit({ metric: "history_turns_alone_ms_p50", value: round(percentile(alone, 50)), ...sized, clients: 1, samples: alone.length });
    }
    // At the full history: a page from the middle of the user's list and of the big conversation.
    const c = [...last.convIds].sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime())[last.convIds.length >> 1]!;
    const middle = Math.floor(sizes.at(-1)![1]! / 2);
    emit({ metric: "history_plan", value: "conversations", plan: await plan(app, sql`select id from conversations where owner_id = ${user.id} and (created_at, id) < (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid) order by created_at desc, id desc limit 21`) });
    emit({ metric: "history_plan", value: "turns", plan: await plan(app, sql`select id from turns where conversation_id = ${last.bigId} and position < ${middle} order by position desc limit 21`) });
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
}
