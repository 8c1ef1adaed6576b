/**
 * Restart safety: a real server process is killed with SIGKILL in the middle of a generation;
 * the next start runs the turn again from its stored seed and parameters, and it completes with
 * the same image an uninterrupted run produces.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, isFinalTurnEvent, subscription, wsClient } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";
import { freshLocation, type DataLocation } from "../helpers/db.js";
import { spawnServer } from "../helpers/process.js";

const EVENTS = `subscription($id: ID!) { turnUpdated(id: $id) { kind step turn { status outputImages { sha256 } } } }`;
const PARAMS = { steps: 24, diffusionSteps: 25, seed: 1234 };

let where: DataLocation;
beforeAll(async () => {
  where = await freshLocation();
});
afterAll(async () => {
  await where?.cleanup();
});

describe("kill -9 mid-generation", () => {
  it("resumes the turn on the next start and produces the image it would have produced", async () => {
    const env = { ...where.env, ENGINE_THREADS: "1" };
    const first = await spawnServer(env);
    const key = first.apiKey;
    try {
      if (key === null) throw new Error("a fresh database prints the admin key");
      const conv = (await gqlOk(first.url, key, CREATE_CONVERSATION, { title: "interrupted" })).createConversation.id;
      const sent = await gqlOk(first.url, key, SEND_MESSAGE, { input: { conversationId: conv, text: "a red circle", task: "GENERATE", params: PARAMS } });
      const turnId = sent.sendMessage.assistantTurn.id as string;
      const client = wsClient(first.wsUrl, key);
      // Wait until it is well under way, then kill the process without any chance to clean up.
      await collect(subscription(client, EVENTS, { id: turnId }), { until: (evs) => evs.some((e) => e.turnUpdated.kind === "STEP" && e.turnUpdated.step >= 2) });
      first.child.kill("SIGKILL");
      await first.exited;
      await Promise.resolve(client.dispose()).catch(() => undefined);

      const second = await spawnServer(env);
      try {
        const client2 = wsClient(second.wsUrl, key);
        const events = await collect(subscription(client2, EVENTS, { id: turnId }), { until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated) });
        await client2.dispose();
        const resumed = events.at(-1)!.turnUpdated;
        expect(resumed.turn.status).toBe("COMPLETED"); // a COMPLETED event, or the snapshot of one

        // The same message, uninterrupted, in another conversation.
        const conv2 = (await gqlOk(second.url, key, CREATE_CONVERSATION, { title: "uninterrupted" })).createConversation.id;
        const again = await gqlOk(second.url, key, SEND_MESSAGE, { input: { conversationId: conv2, text: "a red circle", task: "GENERATE", params: PARAMS } });
        const client3 = wsClient(second.wsUrl, key);
        const reference = await collect(subscription(client3, EVENTS, { id: again.sendMessage.assistantTurn.id }), { until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated) });
        await client3.dispose();
        expect(resumed.turn.outputImages[0].sha256).toBe(reference.at(-1)!.turnUpdated.turn.outputImages[0].sha256);
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    }
  }, 300_000);
});
