/**
 * TOKEN text is never lost, even for a deliberately slow client: a subscriber that reads nothing
 * while an answer streams gets the unread deltas joined into one, so concatenating deltas gives
 * the whole answer, as a fast graphql-ws client's do. A real server, store, runner and event hub;
 * the engine is scripted to answer in several tokens (unipic-tiny answers in one word).
 */
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { storeUpload } from "../../src/api/http.js";
import { toGlobalId } from "../../src/api/ids.js";
import { Channel } from "../../src/channel.js";
import type { EngineClient, JobEvent } from "../../src/engine/types.js";
import { Task, type UserRow } from "../../src/store/index.js";
import { EngineRunner } from "../../src/turns/runner.js";
import { sendMessage, watchTurn } from "../../src/turns/service.js";
import { isFinalTurnEvent, startTestApp, subscription, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";

const WORDS = ["The", " circle", " is", " red", "."];
const TURN_EVENTS = `subscription($id: ID!) { turnUpdated(id: $id) { kind delta turn { status text } } }`;

/** Streams WORDS as TOKEN events a few milliseconds apart, then the answer. */
function scriptedEngine(manifest: EngineClient["manifest"]): EngineClient {
  return {
    manifest,
    ready: true,
    submit() {
      const channel = new Channel<JobEvent>();
      void (async () => {
        channel.push({ type: "started" });
        let text = "";
        for (const word of WORDS) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          text += word;
          channel.push({ type: "token", delta: word, text });
        }
        channel.push({ type: "done", image: null, text, latents: null, params: { maxTokens: 16, resolution: 64 } });
        channel.close();
      })();
      return { id: "scripted", events: channel.drain(), cancel: () => channel.close() };
    },
    queuePosition: () => null,
    cancel: () => false,
    close: async () => undefined,
  };
}

let t: TestApp;
let user: UserRow;
beforeAll(async () => {
  t = await startTestApp(); // ENGINE=off: this test's runner runs the turn
  user = (await t.app.store.users.byApiKey(t.adminKey))!;
});
afterAll(async () => {
  await t?.close();
});

describe("TOKEN events", () => {
  it("give a slow subscriber the unread deltas joined, and a fast one each delta: both the whole answer", async () => {
    const { services, store } = t.app;
    const runner = new EngineRunner({ store, events: services, engine: scriptedEngine(services.manifest!) });
    const conversation = await store.conversations.create(user.id, "tokens");
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer();
    const image = await storeUpload(services, user, new Uint8Array(png));
    const { assistant } = await sendMessage(services, user, { conversationId: conversation.id, text: "what is it?", imageIds: [image.id], task: Task.UNDERSTAND });

    const slow = watchTurn(services, user.id, assistant.id);
    expect((await slow.next()).value?.kind).toBe("SNAPSHOT"); // subscribed; now it reads nothing
    const client = wsClient(t.wsUrl, t.adminKey);
    const fast = await collect(subscription(client, TURN_EVENTS, { id: toGlobalId("Turn", assistant.id) }), {
      until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated),
      onItem: (e) => {
        if (e.turnUpdated.kind === "SNAPSHOT") runner.enqueue(assistant);
      },
    });
    await client.dispose();
    const late = await collect(slow);

    const answer = WORDS.join("");
    const fastTokens = fast.map((e) => e.turnUpdated).filter((e) => e.kind === "TOKEN");
    expect(fast.at(-1)!.turnUpdated.turn).toEqual({ status: "COMPLETED", text: answer });
    expect(fastTokens.map((e) => e.delta).join("")).toBe(answer);
    const slowTokens = late.filter((e) => e.kind === "TOKEN");
    expect(slowTokens.map((e) => e.delta)).toEqual([answer]); // five unread tokens, one event, no text lost
    expect(late.at(-1)!.turn.status).toBe("COMPLETED");
  });
});
