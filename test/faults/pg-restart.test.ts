/**
 * PostgreSQL goes away and comes back while turns run and clients subscribe (issue 14, item 3).
 * The real local cluster behind DATABASE_URL is stopped (fast mode: every connection ended) and
 * started again, the restart held open until a running turn has tried to write, so the test sees
 * the moments that matter: /readyz 503, coded errors for clients, then /readyz 200 by itself,
 * the turns in flight COMPLETED with the image their seed gives, and nothing stored lost or
 * changed; one server process throughout.
 * It restarts a cluster that other tests may use: scripts/test.mjs runs it alone, after the rest.
 */
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREATE_CONVERSATION, SEND_MESSAGE, gql, gqlOk, isFinalTurnEvent, subscription, startTestApp, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";
import { ensureRunning, restartableCluster, stopCluster, type LocalCluster } from "../helpers/pg-cluster.js";
import { waitFor } from "../helpers/wait.js";

const found = restartableCluster();
const cluster = "skip" in found ? null : (found as LocalCluster);
const EVENTS = `subscription($id: ID!) { turnUpdated(id: $id) { kind step turn { id status outputImages { sha256 } } } }`;
const HISTORY = `query($id: ID!) { conversation(id: $id) { title turns(first: 100) { nodes { id position role status text seed outputImages { sha256 } } } } }`;
/** Long enough that the stop (about a second) lands while the first turn still runs. */
const LONG = { steps: 64, diffusionSteps: 100 };
const SHORT = { steps: 8, diffusionSteps: 10 };

interface Result {
  data?: any;
  errors?: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }>;
}

/** Every result of a subscription, those with errors included (subscription() stops at the first). */
async function* results(client: Client, id: string): AsyncGenerator<Result> {
  yield* client.iterate<any>({ query: EVENTS, variables: { id } }) as AsyncIterable<Result>;
}

describe.skipIf(cluster === null)(cluster === null ? `PostgreSQL restarts mid-run (skipped: ${(found as { skip: string }).skip})` : "PostgreSQL restarts mid-run", () => {
  let t: TestApp;
  const log: string[] = [];
  const readyz = async () => (await fetch(`${t.url}/readyz`)).status;

  beforeAll(async () => {
    t = await startTestApp({ ENGINE: "on", ENGINE_THREADS: "1", ENGINE_WORKERS: "1" }, undefined, { log: (line) => log.push(line) });
  });
  afterAll(async () => {
    // Whatever happened above, PostgreSQL is left running for everyone else.
    if (cluster !== null) await ensureRunning(cluster);
    await t?.close();
  });

  it("answers coded errors while it is down, recovers by itself, and completes the turns in flight", async () => {
    const pgCluster = cluster!;
    // Stored before the restart: must read back identical after it.
    const conv = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "before the restart" })).createConversation.id;
    const first = await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: "a red circle", task: "GENERATE", params: { ...SHORT, seed: 7 } } });
    const watch = wsClient(t.wsUrl, t.adminKey);
    await collect(subscription(watch, EVENTS, { id: first.sendMessage.assistantTurn.id }), { until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated) });
    const before = (await gqlOk(t.url, t.adminKey, HISTORY, { id: conv })).conversation;
    expect(before.turns.nodes.at(-1).status).toBe("COMPLETED");

    // In flight: a long turn (running when the database stops) and a short one queued behind it.
    const inFlight = [
      { text: "a blue square", params: { ...LONG, seed: 101 } },
      { text: "a green triangle", params: { ...SHORT, seed: 202 } },
    ];
    const live = new Map<string, Promise<Result[]>>();
    for (const m of inFlight) {
      const sent = await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: m.text, task: "GENERATE", params: m.params } });
      const id = sent.sendMessage.assistantTurn.id as string;
      live.set(id, collect(results(watch, id), { until: (rs) => isFinalTurnEvent(rs.at(-1)?.data?.turnUpdated) }));
    }
    const [longId] = [...live.keys()];
    const stepSeen = (async () => {
      const probe = wsClient(t.wsUrl, t.adminKey);
      await collect(subscription(probe, EVENTS, { id: longId }), { until: (evs) => evs.some((e) => e.turnUpdated.kind === "STEP") });
      await probe.dispose();
    })();
    await stepSeen;

    stopCluster(pgCluster);
    try {
      // A job ran on while the database was down and tried to store what it did.
      await waitFor("a turn's write to meet the stopped database", () => log.find((l) => /^store: (turns|images)\.\w+: the database is unreachable/.test(l)));
      expect(await waitFor("/readyz to say not ready", readyz, (s) => s === 503)).toBe(503);
      const body = await (await fetch(`${t.url}/readyz`)).json();
      expect(body).toMatchObject({ status: "not ready", database: false });

      // Clients get coded errors that say to come back, not INTERNAL.
      const refused = await gql(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: conv, text: "while down", task: "GENERATE", params: SHORT } });
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "UNAVAILABLE", retryAfterMs: 1000 });
      const upload = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "image/png" }, body: new Uint8Array(8) });
      expect(upload.status).toBe(503);
      expect((await upload.json()).error).toMatchObject({ code: "UNAVAILABLE", retryAfterMs: 1000 });
      expect(upload.headers.get("retry-after")).toBe("1");
      // A new WebSocket cannot have its key checked: 1013 Try Again Later, not 4403 Forbidden.
      const late = wsClient(t.wsUrl, t.adminKey);
      const closed = await collect(subscription(late, EVENTS, { id: longId })).then(
        () => null,
        (error: { raw?: { code?: number; reason?: string } }) => error.raw,
      );
      expect(closed).toMatchObject({ code: 1013, reason: expect.stringContaining("UNAVAILABLE") });
      await late.dispose();
    } finally {
      await ensureRunning(pgCluster);
    }

    // The same process, by itself: ready again, and the turns in flight end COMPLETED.
    expect(await waitFor("/readyz to say ready again", readyz, (s) => s === 200)).toBe(200);
    const finals = new Map<string, any>();
    for (const [id, events] of live) {
      const rs = await events;
      finals.set(id, rs.at(-1)!.data.turnUpdated.turn);
      // An event whose fields needed the database while it was down carried a coded error; the
      // subscription went on (graphql-ws: one result with errors, not the end of the stream).
      for (const r of rs.filter((r) => r.errors !== undefined)) {
        expect(r.errors!.map((e) => e.extensions?.code)).toEqual(r.errors!.map(() => "UNAVAILABLE"));
      }
    }
    await watch.dispose();
    for (const turn of finals.values()) expect(turn.status).toBe("COMPLETED");

    // Each made the image its seed gives: the same as a run that no restart touched.
    const ref = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "reference" })).createConversation.id;
    const check = wsClient(t.wsUrl, t.adminKey);
    for (const [i, id] of [...live.keys()].entries()) {
      const again = await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: ref, text: inFlight[i]!.text, task: "GENERATE", params: inFlight[i]!.params } });
      const events = await collect(subscription(check, EVENTS, { id: again.sendMessage.assistantTurn.id }), { until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated) });
      expect(finals.get(id).outputImages[0].sha256).toBe(events.at(-1)!.turnUpdated.turn.outputImages[0].sha256);
    }
    await check.dispose();

    // Nothing lost or changed: the history before, then the two in-flight exchanges, nothing of
    // the refused message.
    const after = (await gqlOk(t.url, t.adminKey, HISTORY, { id: conv })).conversation;
    expect(after.turns.nodes.slice(0, before.turns.nodes.length)).toEqual(before.turns.nodes);
    expect(after.turns.nodes.length).toBe(before.turns.nodes.length + 2 * inFlight.length);
    expect(after.turns.nodes.map((n: { text: string }) => n.text)).not.toContain("while down");
    expect(log.some((l) => /got through once the database was back/.test(l))).toBe(true);
  });
});
