import { describe, expect, it } from "vitest";
import type { TurnRow } from "../../src/store/index.js";
import { createTurnEvents, EventHub, TurnEventKind, type HubEvent, type TurnHubEvent } from "../../src/turns/events.js";

interface E extends HubEvent {
  name: string;
}

const step = (n: number): E => ({ name: `step${n}`, coalesceKey: "step" });
const status = (name: string): E => ({ name });

describe("event hub", () => {
  it("gives a slow subscriber the newest progress event and every status event, in order", async () => {
    const hub = new EventHub<E>();
    const sub = hub.subscribe("t", async () => [status("snapshot")]);
    expect((await sub.next()).value?.name).toBe("snapshot");
    // The subscriber reads nothing while these arrive (a slow socket).
    for (const e of [status("running"), step(1), step(2), step(3), status("completed")]) hub.publish("t", e);
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) seen.push((await sub.next()).value!.name);
    expect(seen).toEqual(["running", "step3", "completed"]);
    await sub.return(undefined);
    expect(hub.size).toBe(0);
  });

  it("delivers to every subscriber of a topic, and only to them", async () => {
    const hub = new EventHub<E>();
    const a = hub.subscribe("t1", async () => []);
    const b = hub.subscribe("t1", async () => []);
    const c = hub.subscribe("t2", async () => []);
    const pending = [a.next(), b.next()];
    await new Promise((r) => setImmediate(r));
    hub.publish("t1", status("x"));
    expect((await Promise.all(pending)).map((r) => r.value?.name)).toEqual(["x", "x"]);
    hub.publish("t2", status("y"));
    expect((await c.next()).value?.name).toBe("y");
    hub.closeAll();
    expect((await a.next()).done).toBe(true);
  });

  it("removes a subscriber that returns before reading anything", async () => {
    const hub = new EventHub<E>();
    const sub = hub.subscribe("t", async () => []);
    expect(hub.size).toBe(1);
    expect([hub.watched("t"), hub.watched("other")]).toEqual([true, false]);
    await sub.return(undefined);
    expect(hub.size).toBe(0);
    expect(hub.watched("t")).toBe(false);
  });
});

describe("a turn's events for a slow subscriber", () => {
  const turn = (text: string): TurnRow => ({ id: "t", text, status: "RUNNING" }) as TurnRow;
  const token = (delta: string, text: string): TurnHubEvent => ({ kind: TurnEventKind.TOKEN, turn: turn(text), delta, coalesceKey: "token" });
  const preview = (step: number): TurnHubEvent => ({ kind: TurnEventKind.STEP, turn: turn(""), step, coalesceKey: "step" });

  it("joins unread TOKEN deltas, so concatenating deltas never loses text; a STEP stays latest-wins", async () => {
    const { turnHub } = createTurnEvents();
    const fast = turnHub.subscribe("t", async () => []);
    const slow = turnHub.subscribe("t", async () => []);
    const fastDeltas: string[] = [];
    let text = "";
    for (const word of ["The", " circle", " is", " red"]) {
      text += word;
      const read = fast.next();
      turnHub.publish("t", token(word, text));
      fastDeltas.push((await read).value!.delta!);
    }
    turnHub.publish("t", preview(1));
    turnHub.publish("t", preview(2));
    turnHub.publish("t", { kind: TurnEventKind.COMPLETED, turn: { ...turn(text), status: "COMPLETED" } });
    const got: TurnHubEvent[] = [];
    for (let i = 0; i < 3; i++) got.push((await slow.next()).value!);
    expect(fastDeltas).toEqual(["The", " circle", " is", " red"]);
    expect(got.map((e) => [e.kind, e.delta ?? e.step ?? null])).toEqual([["TOKEN", "The circle is red"], ["STEP", 2], ["COMPLETED", null]]);
    expect(got[0]!.turn.text).toBe("The circle is red");
    await Promise.all([fast.return(undefined), slow.return(undefined)]);
  });
});
