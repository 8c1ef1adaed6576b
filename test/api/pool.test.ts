/**
 * The server with ENGINE_WORKERS=2: turns run on a pool of two engine threads behind one queue,
 * stream to completion, and a seed gives the same image whichever worker ran it and whatever ran
 * beside it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EnginePool } from "../../src/engine/pool.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, isFinalTurnEvent, startTestApp, subscription, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";

const FAST = { steps: 4, diffusionSteps: 5 };
const EVENTS = `subscription($id: ID!) { turnUpdated(id: $id) { kind turn { status outputImages { sha256 } } } }`;

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ENGINE: "on", ENGINE_WORKERS: "2" });
});
afterAll(async () => {
  await t?.close();
});

async function run(conv: string, seed: number): Promise<string> {
  const r = await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: "a red circle", task: "GENERATE", params: { ...FAST, seed } } });
  const client = wsClient(t.wsUrl, t.adminKey);
  try {
    const events = await collect(subscription(client, EVENTS, { id: r.sendMessage.assistantTurn.id }), { until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated) });
    const last = events.at(-1)!.turnUpdated;
    expect(last.turn.status).toBe("COMPLETED");
    return last.turn.outputImages[0].sha256;
  } finally {
    await client.dispose();
  }
}

describe("engine pool behind the API", () => {
  it("runs concurrent turns on two workers; a seed's image does not depend on where it ran", async () => {
    expect(t.app.engine).toBeInstanceOf(EnginePool);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    const conv = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "pool" })).createConversation.id;
    const together = await Promise.all([1, 2, 3, 4, 5, 6].map((seed) => run(conv, seed)));
    expect(new Set(together).size).toBe(6);
    expect(await run(conv, 3)).toBe(together[2]); // alone now, batched with five others before
  });
});
