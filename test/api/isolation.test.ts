import { randomUUID } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toGlobalId } from "../../src/api/ids.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gql, gqlOk, startTestApp, subscription, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";

let t: TestApp;
let alice: string;
let bob: string;
const a = { conversation: "", turn: "", image: "", sha: "", url: "" };
const ghost = {
  conversation: toGlobalId("Conversation", randomUUID()),
  turn: toGlobalId("Turn", randomUUID()),
  image: toGlobalId("Image", "0".repeat(64)),
};

export async function uploadPng(url: string, key: string, color: { r: number; g: number; b: number }): Promise<any> {
  const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: color } }).png().toBuffer();
  const res = await fetch(`${url}/images`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "image/png" }, body: png });
  expect(res.status).toBe(201);
  return res.json();
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.newUser("alice");
  bob = await t.newUser("bob");
  a.conversation = (await gqlOk(t.url, alice, CREATE_CONVERSATION, { title: "private" })).createConversation.id;
  const uploaded = await uploadPng(t.url, alice, { r: 10, g: 200, b: 30 });
  a.image = uploaded.id;
  a.sha = uploaded.sha256;
  a.url = uploaded.url;
  const sent = await gqlOk(t.url, alice, SEND_MESSAGE, { input: { conversationId: a.conversation, text: "what color is it?", imageIds: [a.image] } });
  a.turn = sent.sendMessage.assistantTurn.id;
});
afterAll(async () => {
  await t?.close();
});

/** Runs the same operation on Alice's id and on an id that does not exist; both answers must be identical. */
async function sameAsMissing(query: string, vars: (id: string) => Record<string, unknown>, own: string, missing: string): Promise<unknown> {
  const mine = await gql(t.url, bob, query, vars(own));
  const none = await gql(t.url, bob, query, vars(missing));
  const strip = (r: typeof mine) => JSON.stringify({ data: r.data, errors: r.errors?.map((e) => ({ message: e.message.replace(own, "ID").replace(missing, "ID"), code: e.extensions?.code })) });
  expect(strip(mine)).toBe(strip(none));
  return mine;
}

describe("isolation between users", () => {
  it("Alice sees her own data", async () => {
    const data = await gqlOk(t.url, alice, `query($id: ID!) { conversation(id: $id) { title turns { totalCount } } }`, { id: a.conversation });
    expect(data.conversation).toEqual({ title: "private", turns: { totalCount: 2 } });
  });

  it("queries: conversation, node and the conversations list", async () => {
    const r = (await sameAsMissing(`query($id: ID!) { conversation(id: $id) { id } }`, (id) => ({ id }), a.conversation, ghost.conversation)) as any;
    expect(r.errors[0].extensions.code).toBe("NOT_FOUND");
    for (const [own, missing] of [[a.conversation, ghost.conversation], [a.turn, ghost.turn], [a.image, ghost.image]] as const) {
      const n = (await sameAsMissing(`query($id: ID!) { node(id: $id) { id } }`, (id) => ({ id }), own, missing)) as any;
      expect(n.data.node).toBeNull();
    }
    const list = await gqlOk(t.url, bob, `{ conversations(first: 50) { nodes { id } } }`);
    expect(list.conversations.nodes).toEqual([]);
  });

  it("mutations: rename, delete, sendMessage, cancelTurn", async () => {
    const cases: Array<[string, (id: string) => Record<string, unknown>, string, string]> = [
      [`mutation($id: ID!) { renameConversation(id: $id, title: "mine now") { id } }`, (id) => ({ id }), a.conversation, ghost.conversation],
      [`mutation($id: ID!) { deleteConversation(id: $id) }`, (id) => ({ id }), a.conversation, ghost.conversation],
      [SEND_MESSAGE, (id) => ({ input: { conversationId: id, text: "hello" } }), a.conversation, ghost.conversation],
      [`mutation($id: ID!) { cancelTurn(id: $id) { id } }`, (id) => ({ id }), a.turn, ghost.turn],
    ];
    for (const [query, vars, own, missing] of cases) {
      const r = (await sameAsMissing(query, vars, own, missing)) as any;
      expect(r.errors[0].extensions.code).toBe("NOT_FOUND");
    }
    // Alice's image cannot be attached to Bob's own conversation either.
    const bobs = (await gqlOk(t.url, bob, CREATE_CONVERSATION, { title: "bob" })).createConversation.id;
    const r = (await sameAsMissing(SEND_MESSAGE, (id) => ({ input: { conversationId: bobs, text: "edit it", imageIds: [id] } }), a.image, ghost.image)) as any;
    expect(r.errors[0].extensions.code).toBe("NOT_FOUND");
    // Nothing of Alice's changed.
    const data = await gqlOk(t.url, alice, `query($id: ID!) { conversation(id: $id) { title turns { totalCount nodes { status } } } }`, { id: a.conversation });
    expect(data.conversation.title).toBe("private");
    expect(data.conversation.turns.totalCount).toBe(2);
    expect(data.conversation.turns.nodes[1].status).toBe("QUEUED");
  });

  it("subscriptions: turnUpdated and conversationUpdated", async () => {
    for (const [query, own, missing] of [
      [`subscription($id: ID!) { turnUpdated(id: $id) { kind } }`, a.turn, ghost.turn],
      [`subscription($id: ID!) { conversationUpdated(id: $id) { kind } }`, a.conversation, ghost.conversation],
    ] as const) {
      const codes: unknown[] = [];
      for (const id of [own, missing]) {
        const client = wsClient(t.wsUrl, bob);
        const error = await collect(subscription(client, query, { id }), { until: () => true }).then(
          () => null,
          (e: { errors?: Array<{ extensions?: { code?: string } }> }) => e.errors?.[0]?.extensions?.code,
        );
        await client.dispose();
        codes.push(error);
      }
      expect(codes).toEqual(["NOT_FOUND", "NOT_FOUND"]);
    }
  });

  it("image URLs", async () => {
    const own = await fetch(`${t.url}${a.url}`, { headers: { authorization: `Bearer ${alice}` } });
    expect(own.status).toBe(200);
    expect(own.headers.get("content-type")).toBe("image/png");
    const theirs = await fetch(`${t.url}${a.url}`, { headers: { authorization: `Bearer ${bob}` } });
    const missing = await fetch(`${t.url}/images/${"0".repeat(64)}.png`, { headers: { authorization: `Bearer ${bob}` } });
    expect(theirs.status).toBe(404);
    expect(await theirs.json()).toEqual(await missing.json());
  });

  it("deleting a conversation makes its images unreachable to its owner", async () => {
    const key = await t.newUser("carol");
    const conv = (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: "temp" })).createConversation.id;
    const img = await uploadPng(t.url, key, { r: 200, g: 20, b: 20 });
    await gqlOk(t.url, key, SEND_MESSAGE, { input: { conversationId: conv, text: "what color is it?", imageIds: [img.id] } });
    expect((await fetch(`${t.url}${img.url}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    await gqlOk(t.url, key, `mutation($id: ID!) { deleteConversation(id: $id) }`, { id: conv });
    expect((await fetch(`${t.url}${img.url}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    const node = await gqlOk(t.url, key, `query($id: ID!) { node(id: $id) { id } }`, { id: img.id });
    expect(node.node).toBeNull();
  });
});
