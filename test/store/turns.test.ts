/** Turns: sendMessage under concurrency, Relay paging both ways, status transitions, recovery. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { createStore, sha256Hex, type Database, type Store, type TurnRow, type TurnStatus } from "../../src/store/index.js";
import { turns } from "../../src/store/schema.js";
import { drivers, fakeImage } from "../helpers/db.js";

describe.each(drivers)("turns on $name", (driver) => {
  let db: Database;
  let store: Store;
  let cleanup: () => Promise<void>;
  let owner: string;

  beforeAll(async () => {
    const fresh = await driver.fresh();
    db = fresh.db;
    cleanup = fresh.cleanup;
    store = createStore(db);
    owner = (await store.users.create("turner")).user.id;
  });
  afterAll(async () => {
    await cleanup?.();
  });

  const msg = (text: string, over: Partial<Parameters<Store["turns"]["sendMessage"]>[2]> = {}) => ({
    text,
    task: "GENERATE" as const,
    kind: "generate" as const,
    params: { steps: 4, prompt: { nested: ["ü", 1] } },
    seed: 2 ** 40 + 7,
    imageIds: [],
    ...over,
  });

  it("stores a user turn and its queued assistant turn, and touches the conversation", async () => {
    const c = await store.conversations.create(owner, "t");
    const sent = await store.turns.sendMessage(owner, c.id, msg("draw a cat"));
    expect(sent).not.toBeNull();
    const { user, assistant } = sent!;
    expect(user).toMatchObject({ conversationId: c.id, position: 1, role: "user", kind: "generate", task: "GENERATE", text: "draw a cat", status: "COMPLETED", seed: 2 ** 40 + 7, replyTo: null, startedAt: null, finishedAt: null, errorCode: null, errorMessage: null });
    expect(user.params).toEqual({ steps: 4, prompt: { nested: ["ü", 1] } });
    expect(user.createdAt).toBeInstanceOf(Date);
    expect(assistant).toMatchObject({ position: 2, role: "assistant", status: "QUEUED", text: "", replyTo: user.id });
    expect(await store.turns.get(owner, user.id)).toEqual(user);
    expect(await store.turns.getById(assistant.id)).toEqual(assistant);
    expect(await store.turns.ownerOf(assistant.id)).toBe(owner);
    const after = await store.conversations.get(owner, c.id);
    expect(after!.updatedAt.getTime()).toBeGreaterThanOrEqual(c.updatedAt.getTime());
    const other = (await store.users.create("other")).user.id;
    expect(await store.turns.get(other, user.id)).toBeNull();
    for (const bad of ["", "x", "1234"]) {
      expect(await store.turns.get(owner, bad)).toBeNull();
      expect(await store.turns.getById(bad)).toBeNull();
      expect(await store.turns.ownerOf(bad)).toBeNull();
      expect(await store.turns.setStatus(bad, "RUNNING")).toBeNull();
      expect(await store.turns.sendMessage(owner, bad, msg("x"))).toBeNull();
      expect(await store.turns.count(bad)).toBe(0);
      expect(await store.turns.images(bad)).toEqual([]);
      await expect(store.turns.attachImage(bad, "0".repeat(64), "output", 0)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    }
    await expect(store.turns.attachImage(assistant.id, "0".repeat(64), "output", 0)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
  });

  it("gives 20 concurrent sendMessage calls distinct positions 1..40", async () => {
    const c = await store.conversations.create(owner, "race");
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.turns.sendMessage(owner, c.id, msg(`m${i}`))));
    const positions = results.flatMap((r) => [r!.user.position, r!.assistant.position]).sort((a, b) => a - b);
    expect(positions).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const r of results) expect(r!.assistant.position).toBe(r!.user.position + 1);
    expect(await store.turns.count(c.id)).toBe(40);
  });

  it("stores several replies to one message, and earlier messages as finished history, in one transaction", async () => {
    const bytes = fakeImage("history-image");
    const img = (await store.images.put({ id: sha256Hex(bytes), bytes, mime: "image/png", width: 1, height: 1 })).id;
    await store.images.grantUpload(owner, img);
    const c = await store.conversations.create(owner, "openai");
    const sent = (await store.turns.sendMessage(owner, c.id, msg("again", {
      task: "UNDERSTAND",
      kind: "understand",
      imageIds: [img],
      seed: 3,
      replies: [{ seed: 3, params: { seed: 3 } }, { seed: 4, params: { seed: 4 } }],
      history: [{ role: "user", text: "what shape?", imageIds: [img] }, { role: "assistant", text: "circle", imageIds: [] }],
    })))!;
    const all = (await store.turns.page(c.id, { first: 10 })).items;
    expect(all.map((t) => `${t.position}:${t.role}:${t.status}:${t.text}`)).toEqual(["1:user:COMPLETED:what shape?", "2:assistant:COMPLETED:circle", "3:user:COMPLETED:again", "4:assistant:QUEUED:", "5:assistant:QUEUED:"]);
    expect(all[1]!.replyTo).toBe(all[0]!.id);
    expect(sent.replies.map((r) => [r.seed, r.params, r.replyTo])).toEqual([[3, { seed: 3 }, sent.user.id], [4, { seed: 4 }, sent.user.id]]);
    expect(sent.assistant).toEqual(sent.replies[0]);
    expect((await store.turns.images(all[0]!.id)).map((i) => i.image.id)).toEqual([img]);
    expect((await store.turns.images(sent.user.id)).map((i) => i.image.id)).toEqual([img]);
    // An image the owner cannot see, in the history too, fails the whole message.
    const hidden = fakeImage("not-granted");
    const other = (await store.images.put({ id: sha256Hex(hidden), bytes: hidden, mime: "image/png", width: 1, height: 1 })).id;
    await expect(store.turns.sendMessage(owner, c.id, msg("x", { history: [{ role: "user", text: "see", imageIds: [other] }] }))).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    expect(await store.turns.count(c.id)).toBe(5);
  });

  it("pages 250 turns forwards and backwards with no gaps or repeats", async () => {
    const c = await store.conversations.create(owner, "paging");
    const rows = range(1, 250).map((position) => ({
      conversationId: c.id,
      position,
      role: position % 2 ? ("user" as const) : ("assistant" as const),
      task: "AUTO" as const,
      text: `p${position}`,
      status: "COMPLETED" as const,
    }));
    await db.orm.insert(turns).values(rows);
    expect(await store.turns.count(c.id)).toBe(250);

    const forward: number[] = [];
    let after: number | undefined;
    for (let n = 0; ; n++) {
      const page = await store.turns.page(c.id, { first: 40, after });
      expect(page.hasPreviousPage).toBe(after !== undefined);
      forward.push(...page.items.map((t) => t.position));
      if (!page.hasNextPage) break;
      after = page.items[page.items.length - 1]!.position;
      expect(n).toBeLessThan(10);
    }
    expect(forward).toEqual(range(1, 250));

    const backward: number[][] = [];
    let before: number | undefined;
    for (let n = 0; ; n++) {
      const page = await store.turns.page(c.id, { last: 40, before });
      expect(page.hasNextPage).toBe(before !== undefined);
      const pos = page.items.map((t) => t.position);
      expect(pos).toEqual([...pos].sort((a, b) => a - b)); // ascending within a page
      backward.unshift(pos);
      if (!page.hasPreviousPage) break;
      before = pos[0];
      expect(n).toBeLessThan(10);
    }
    expect(backward.flat()).toEqual(range(1, 250));

    const exact = await store.turns.page(c.id, { first: 250 });
    expect(exact.items).toHaveLength(250);
    expect(exact).toMatchObject({ hasNextPage: false, hasPreviousPage: false });
    const tail = await store.turns.page(c.id, { first: 10, after: 245 });
    expect(tail.items.map((t) => t.position)).toEqual(range(246, 250));
    expect(tail).toMatchObject({ hasNextPage: false, hasPreviousPage: true });
    const head = await store.turns.page(c.id, { last: 10, before: 4 });
    expect(head.items.map((t) => t.position)).toEqual([1, 2, 3]);
    expect(head).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const window = await store.turns.page(c.id, { first: 5, after: 100, before: 103 });
    expect(window.items.map((t) => t.position)).toEqual([101, 102]);
    expect(window).toMatchObject({ hasNextPage: true, hasPreviousPage: true });
    const zero = await store.turns.page(c.id, { first: 0 });
    expect(zero).toEqual({ items: [], hasNextPage: true, hasPreviousPage: false });
    await expect(store.turns.page(c.id, { first: -1 })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT });
    expect(await store.turns.page("bad", { first: 5 })).toEqual({ items: [], hasNextPage: false, hasPreviousPage: false });
  });

  it("allows only the legal status transitions (compare-and-set)", async () => {
    const c = await store.conversations.create(owner, "status");
    const fresh = async () => (await store.turns.sendMessage(owner, c.id, msg("s")))!.assistant;
    const legal: Array<[TurnStatus, TurnStatus]> = [
      ["QUEUED", "RUNNING"], ["QUEUED", "CANCELLED"], ["QUEUED", "FAILED"],
      ["RUNNING", "COMPLETED"], ["RUNNING", "FAILED"], ["RUNNING", "CANCELLED"], ["RUNNING", "QUEUED"],
    ];
    const all: TurnStatus[] = ["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"];
    const reach = async (to: TurnStatus): Promise<TurnRow> => {
      const t = await fresh();
      if (to === "QUEUED") return t;
      if (to === "RUNNING" || to === "COMPLETED") {
        const r = (await store.turns.setStatus(t.id, "RUNNING"))!;
        return to === "RUNNING" ? r : (await store.turns.setStatus(t.id, "COMPLETED"))!;
      }
      return (await store.turns.setStatus(t.id, to))!;
    };
    for (const from of all) {
      for (const to of all) {
        const t = await reach(from);
        expect(t.status).toBe(from);
        const r = await store.turns.setStatus(t.id, to);
        const ok = legal.some(([f, x]) => f === from && x === to);
        expect(r === null ? "refused" : "allowed", `${from} -> ${to}`).toBe(ok ? "allowed" : "refused");
        expect((await store.turns.getById(t.id))!.status).toBe(ok ? to : from);
      }
    }
    const t = await fresh();
    const running = (await store.turns.setStatus(t.id, "RUNNING"))!;
    expect(running.startedAt).toBeInstanceOf(Date);
    expect(running.finishedAt).toBeNull();
    const failed = (await store.turns.setStatus(t.id, "FAILED", { errorCode: "JOB_FAILED", errorMessage: "boom", text: "partial" }))!;
    expect(failed).toMatchObject({ status: "FAILED", errorCode: "JOB_FAILED", errorMessage: "boom", text: "partial" });
    expect(failed.finishedAt).toBeInstanceOf(Date);
    expect(failed.finishedAt!.getTime()).toBeGreaterThanOrEqual(running.startedAt!.getTime());
    // Two racing workers: exactly one wins the QUEUED -> RUNNING claim.
    const q = await fresh();
    const claims = await Promise.all([1, 2, 3, 4].map(() => store.turns.setStatus(q.id, "RUNNING")));
    expect(claims.filter((x) => x !== null)).toHaveLength(1);
  });

  it("lists unfinished assistant turns oldest first and counts by status", async () => {
    const counts0 = await store.turns.countByStatus();
    expect(Object.keys(counts0).sort()).toEqual(["CANCELLED", "COMPLETED", "FAILED", "QUEUED", "RUNNING"]);
    const c = await store.conversations.create(owner, "recovery");
    const a = (await store.turns.sendMessage(owner, c.id, msg("a")))!.assistant;
    const b = (await store.turns.sendMessage(owner, c.id, msg("b")))!.assistant;
    await store.turns.setStatus(a.id, "RUNNING");
    const unfinished = await store.turns.unfinished();
    expect(unfinished.every((t) => t.role === "assistant" && (t.status === "QUEUED" || t.status === "RUNNING"))).toBe(true);
    const ids = unfinished.map((t) => t.id);
    expect(ids).toContain(a.id);
    expect(ids).toContain(b.id);
    expect(ids.indexOf(a.id)).toBeLessThan(ids.indexOf(b.id));
    const counts1 = await store.turns.countByStatus();
    expect(counts1.RUNNING).toBe(counts0.RUNNING + 1);
    expect(counts1.QUEUED).toBe(counts0.QUEUED + 1);
  });

  it("attaches images with order and finds the latest in a conversation", async () => {
    const put = async (seed: string) => {
      const bytes = fakeImage(seed);
      return (await store.images.put({ id: sha256Hex(bytes), bytes, mime: "image/png", width: 1, height: 1 })).id;
    };
    const [i1, i2, o1, o2] = [await put("in-1"), await put("in-2"), await put("out-1"), await put("out-2")];
    await store.images.grantUpload(owner, i1);
    await store.images.grantUpload(owner, i2);
    const c = await store.conversations.create(owner, "imgs");
    expect(await store.images.latestInConversation(c.id)).toBeNull();
    const s = (await store.turns.sendMessage(owner, c.id, msg("edit", { imageIds: [i2, i1, i2], task: "EDIT", kind: "edit" })))!;
    expect((await store.images.latestInConversation(c.id))?.id).toBe(i1);
    await store.turns.attachImage(s.assistant.id, o2, "output", 1);
    await store.turns.attachImage(s.assistant.id, o1, "output", 0);
    await store.turns.attachImage(s.assistant.id, o1, "output", 0); // idempotent
    const got = await store.turns.images(s.assistant.id);
    expect(got.map((g) => [g.image.id, g.role, g.ord])).toEqual([[o1, "output", 0], [o2, "output", 1]]);
    expect((await store.turns.images(s.user.id)).map((g) => [g.image.id, g.ord])).toEqual([[i2, 0], [i1, 1]]);
    expect((await store.images.latestInConversation(c.id))?.id).toBe(o2);
    const withLineage = await store.images.put({ id: sha256Hex(fakeImage("derived")), bytes: fakeImage("derived"), mime: "image/webp", width: 3, height: 2, producingTurnId: s.assistant.id, sourceImageId: i1, lineage: { model: "unipic-tiny", seed: 5 } });
    expect(withLineage).toMatchObject({ producingTurnId: s.assistant.id, sourceImageId: i1, lineage: { model: "unipic-tiny", seed: 5 } });
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
