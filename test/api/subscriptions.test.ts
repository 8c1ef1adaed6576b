import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, startTestApp, subscription, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";

const TURN_UPDATED = `subscription($id: ID!) { turnUpdated(id: $id) { kind queuePosition turn { id status error { code } } } }`;
const CONVERSATION_UPDATED = `subscription($id: ID!) { conversationUpdated(id: $id) { kind conversation { id title } turn { id role status } } }`;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe("subscriptions over graphql-ws", () => {
  it("turnUpdated sends the snapshot first, then CANCELLED after cancelTurn", async () => {
    const { createConversation } = await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "subs" });
    const sent = await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: createConversation.id, text: "a red circle" } });
    const turnId = sent.sendMessage.assistantTurn.id as string;
    expect(sent.sendMessage.assistantTurn.status).toBe("QUEUED");

    const client = wsClient(t.wsUrl, t.adminKey);
    let cancelled = false;
    const events = await collect(subscription(client, TURN_UPDATED, { id: turnId }), {
      until: (evs) => evs.some((e) => e.turnUpdated.kind === "CANCELLED"),
      onItem: (event) => {
        if (event.turnUpdated.kind === "SNAPSHOT" && !cancelled) {
          cancelled = true;
          void gqlOk(t.url, t.adminKey, `mutation($id: ID!) { cancelTurn(id: $id) { id status } }`, { id: turnId });
        }
      },
    });
    expect(events[0]!.turnUpdated).toMatchObject({ kind: "SNAPSHOT", turn: { id: turnId, status: "QUEUED" } });
    expect(events.at(-1)!.turnUpdated).toMatchObject({ kind: "CANCELLED", turn: { status: "CANCELLED", error: { code: "CANCELLED" } } });

    // The turn is finished: a new subscription gets its snapshot, then completes.
    const late = await collect(subscription(client, TURN_UPDATED, { id: turnId }), { until: () => false });
    await client.dispose();
    expect(late.map((e) => e.turnUpdated.kind)).toEqual(["SNAPSHOT"]);
    expect(late[0]!.turnUpdated.turn.status).toBe("CANCELLED");
  });

  it("conversationUpdated tells watchers about new turns and renames", async () => {
    const { createConversation } = await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "watched" });
    const id = createConversation.id as string;
    const client = wsClient(t.wsUrl, t.adminKey);
    let acted = false;
    const events = await collect(subscription(client, CONVERSATION_UPDATED, { id }), {
      until: (evs) => evs.some((e) => e.conversationUpdated.kind === "RENAMED"),
      onItem: (event) => {
        if (event.conversationUpdated.kind === "SNAPSHOT" && !acted) {
          acted = true;
          void (async () => {
            await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: id, text: "a blue square" } });
            await gqlOk(t.url, t.adminKey, `mutation($id: ID!) { renameConversation(id: $id, title: "renamed") { id } }`, { id });
          })();
        }
      },
    });
    await client.dispose();
    const kinds = events.map((e) => e.conversationUpdated.kind);
    expect(kinds[0]).toBe("SNAPSHOT");
    expect(events[0]!.conversationUpdated.conversation.title).toBe("watched");
    expect(kinds.filter((k) => k === "TURN_ADDED")).toHaveLength(2);
    expect(events.at(-1)!.conversationUpdated.conversation.title).toBe("renamed");
  });

  it("refuses a connection without a valid key", async () => {
    const client = wsClient(t.wsUrl, "upk_not-a-real-key");
    const outcome = await collect(subscription(client, TURN_UPDATED, { id: "x" }), { until: () => true }).then(
      () => "resolved",
      (error: { raw?: { code?: number } }) => error.raw?.code ?? "rejected",
    );
    await client.dispose();
    expect(outcome).toBe(4403);
  });
});
