import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyOf } from "../../src/api/ids.js";
import { CREATE_CONVERSATION, gql, gqlOk, startTestApp, type TestApp } from "../helpers/app.js";

const PAGE = `query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  conversation(id: $id) {
    turns(first: $first, after: $after, last: $last, before: $before) {
      totalCount
      edges { cursor node { position text } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}`;

let t: TestApp;
let conversationId: string;
beforeAll(async () => {
  t = await startTestApp();
  const { createConversation } = await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "long" });
  conversationId = createConversation.id;
  // 125 messages = 250 turns (each message stores the user's turn and a QUEUED reply). The store
  // is used directly to keep set-up fast; paging is what this file tests, over HTTP.
  const user = (await t.app.store.users.byApiKey(t.adminKey))!;
  const key = keyOf("Conversation", conversationId, "id");
  for (let i = 0; i < 125; i++) {
    await t.app.store.turns.sendMessage(user.id, key, { text: `m${i}`, task: "GENERATE", kind: "generate", params: {}, seed: i, imageIds: [] });
  }
});
afterAll(async () => {
  await t?.close();
});

describe("Conversation.turns paging (250 turns)", () => {
  it("pages forwards with first/after: no gaps, no repeats", async () => {
    const seen: number[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const data = await gqlOk(t.url, t.adminKey, PAGE, { id: conversationId, first: 37, after });
      const conn = data.conversation.turns;
      expect(conn.totalCount).toBe(250);
      seen.push(...conn.edges.map((e: any) => e.node.position));
      expect(conn.pageInfo.hasPreviousPage).toBe(after !== undefined);
      pages++;
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(pages).toBe(Math.ceil(250 / 37));
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
  });

  it("pages backwards with last/before: no gaps, no repeats, each page in ascending order", async () => {
    const seen: number[] = [];
    let before: string | undefined;
    for (;;) {
      const data = await gqlOk(t.url, t.adminKey, PAGE, { id: conversationId, last: 40, before });
      const conn = data.conversation.turns;
      const positions = conn.edges.map((e: any) => e.node.position);
      expect([...positions].sort((a, b) => a - b)).toEqual(positions);
      expect(conn.pageInfo.hasNextPage).toBe(before !== undefined);
      seen.unshift(...positions);
      if (!conn.pageInfo.hasPreviousPage) break;
      before = conn.pageInfo.startCursor;
    }
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
  });

  it("pages conversations newest first with first/after", async () => {
    const key = await t.newUser("pager");
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push((await gqlOk(t.url, key, CREATE_CONVERSATION, { title: `c${i}` })).createConversation.title);
    const seen: string[] = [];
    let after: string | undefined;
    for (;;) {
      const data = await gqlOk(t.url, key, `query($after: String) { conversations(first: 3, after: $after) { nodes { title } pageInfo { hasNextPage endCursor } } }`, { after });
      seen.push(...data.conversations.nodes.map((n: any) => n.title));
      if (!data.conversations.pageInfo.hasNextPage) break;
      after = data.conversations.pageInfo.endCursor;
    }
    expect(seen).toEqual([...made].reverse());
  });

  it("refuses a page larger than the limit and a foreign cursor", async () => {
    const big = await gql(t.url, t.adminKey, PAGE, { id: conversationId, first: t.config.limits.maxPageSize + 1 });
    expect(big.errors?.[0]?.extensions?.code).toBe("LIMIT_EXCEEDED");
    expect(big.errors?.[0]?.extensions?.field).toBe("first");
    const bad = await gql(t.url, t.adminKey, PAGE, { id: conversationId, first: 5, after: "bm90LWEtY3Vyc29y" });
    expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_INPUT");
    expect(bad.errors?.[0]?.extensions?.field).toBe("after");
  });
});
