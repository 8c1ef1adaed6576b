/** Users, API keys, conversations (isolation, paging), images and the visibility rule, on every driver. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { createStore, hashApiKey, sha256Hex, type Database, type Store } from "../../src/store/index.js";
import { apiKeys } from "../../src/store/schema.js";
import { drivers, fakeImage } from "../helpers/db.js";

const BAD_IDS = ["", "nope", "123", "00000000-0000-0000-0000-00000000000g", "'; drop table users; --"];
const MISSING = "00000000-0000-4000-8000-000000000000";

describe.each(drivers)("store basics on $name", (driver) => {
  let db: Database;
  let store: Store;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = await driver.fresh();
    db = fresh.db;
    cleanup = fresh.cleanup;
    store = createStore(db);
  });
  afterAll(async () => {
    await cleanup?.();
  });

  it("pings", async () => {
    expect(db.kind).toBe(driver.name);
    expect(await db.ping()).toBe(true);
  });

  describe("users and keys", () => {
    it("creates a user with a key whose hash, not the key, is stored", async () => {
      const before = await store.users.count();
      const { user, apiKey } = await store.users.create("alice", { isAdmin: true });
      expect(apiKey).toMatch(/^upk_[0-9A-Za-z]{40}$/);
      expect(user).toMatchObject({ name: "alice", isAdmin: true });
      expect(user.createdAt).toBeInstanceOf(Date);
      expect(await store.users.count()).toBe(before + 1);
      const keys = await db.orm.select().from(apiKeys);
      const mine = keys.filter((k) => k.userId === user.id);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.keyHash).toBe(hashApiKey(apiKey));
      expect(mine[0]!.prefix).toBe(apiKey.slice(0, 8));
      expect(JSON.stringify(keys)).not.toContain(apiKey);
      expect(await store.users.byApiKey(apiKey)).toEqual(user);
      expect(await store.users.byId(user.id)).toEqual(user);
      expect(await store.users.byName("alice")).toEqual(user);
    });

    it("rejects unknown and revoked keys; issues and revokes more", async () => {
      const { user, apiKey } = await store.users.create("bob");
      expect(user.isAdmin).toBe(false);
      expect(await store.users.byApiKey("upk_" + "x".repeat(40))).toBeNull();
      expect(await store.users.byApiKey("garbage")).toBeNull();
      const second = await store.users.issueKey(user.id);
      expect(second).not.toBe(apiKey);
      expect((await store.users.byApiKey(second))?.id).toBe(user.id);
      expect(await store.users.revokeKey(apiKey)).toBe(true);
      expect(await store.users.revokeKey(apiKey)).toBe(false);
      expect(await store.users.revokeKey("upk_unknown")).toBe(false);
      expect(await store.users.byApiKey(apiKey)).toBeNull();
      expect((await store.users.byApiKey(second))?.id).toBe(user.id);
      const third = await store.users.issueKey(user.id);
      expect(await store.users.revokeAllKeys(user.id)).toBe(2);
      expect(await store.users.byApiKey(second)).toBeNull();
      expect(await store.users.byApiKey(third)).toBeNull();
    });

    it("returns null for malformed or unknown ids and names", async () => {
      for (const bad of BAD_IDS) expect(await store.users.byId(bad)).toBeNull();
      expect(await store.users.byId(MISSING)).toBeNull();
      expect(await store.users.byName("nobody-" + Date.now())).toBeNull();
      await expect(store.users.issueKey("bad")).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
      await expect(store.users.issueKey(MISSING)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
      expect(await store.users.revokeAllKeys("bad")).toBe(0);
    });
  });

  describe("conversations", () => {
    it("isolates owners: another user's conversation is null/false everywhere", async () => {
      const a = (await store.users.create("conv-a")).user;
      const b = (await store.users.create("conv-b")).user;
      const c = await store.conversations.create(a.id, "mine");
      expect(c).toMatchObject({ ownerId: a.id, title: "mine" });
      expect(c.updatedAt).toBeInstanceOf(Date);
      expect(await store.conversations.get(a.id, c.id)).toEqual(c);
      expect(await store.conversations.get(b.id, c.id)).toBeNull();
      expect(await store.conversations.rename(b.id, c.id, "stolen")).toBeNull();
      expect(await store.conversations.delete(b.id, c.id)).toBe(false);
      expect((await store.conversations.list(b.id, { first: 10 })).items).toEqual([]);
      expect(await store.turns.sendMessage(b.id, c.id, msg("hi"))).toBeNull();
      const renamed = await store.conversations.rename(a.id, c.id, "renamed");
      expect(renamed?.title).toBe("renamed");
      expect(renamed!.updatedAt.getTime()).toBeGreaterThanOrEqual(c.updatedAt.getTime());
      for (const bad of BAD_IDS) {
        expect(await store.conversations.get(a.id, bad)).toBeNull();
        expect(await store.conversations.get(bad, c.id)).toBeNull();
        expect(await store.conversations.rename(a.id, bad, "x")).toBeNull();
        expect(await store.conversations.delete(a.id, bad)).toBe(false);
        await store.conversations.touch(bad);
      }
      expect(await store.conversations.delete(a.id, c.id)).toBe(true);
      expect(await store.conversations.get(a.id, c.id)).toBeNull();
      expect(await store.conversations.delete(a.id, c.id)).toBe(false);
    });

    it("lists newest first with a keyset cursor, no gaps or repeats", async () => {
      const u = (await store.users.create("lister")).user;
      const made = [];
      for (let i = 0; i < 23; i++) made.push(await store.conversations.create(u.id, `c${i}`));
      const seen: string[] = [];
      let after: { createdAt: Date; id: string } | undefined;
      let pages = 0;
      for (;;) {
        const page = await store.conversations.list(u.id, { first: 5, after });
        expect(page.hasPreviousPage).toBe(after !== undefined);
        seen.push(...page.items.map((c) => c.id));
        pages++;
        if (!page.hasNextPage) break;
        const lastItem = page.items[page.items.length - 1]!;
        after = { createdAt: lastItem.createdAt, id: lastItem.id };
      }
      expect(pages).toBe(5);
      expect(new Set(seen).size).toBe(23);
      const expected = [...made]
        .sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime() || (x.id < y.id ? 1 : -1))
        .map((c) => c.id);
      expect(seen).toEqual(expected);
    });
  });

  describe("images and visibility", () => {
    it("puts idempotently and round-trips bytes exactly", async () => {
      const bytes = fakeImage("round-trip", 4096);
      const id = sha256Hex(bytes);
      const m1 = await store.images.put({ id, bytes, mime: "image/png", width: 8, height: 4, lineage: { model: "t", n: [1, "é"] } });
      const m2 = await store.images.put({ id, bytes, mime: "image/webp", width: 1, height: 1 });
      expect(m2).toEqual(m1);
      expect(m1).toMatchObject({ id, mime: "image/png", width: 8, height: 4, byteSize: 4096, producingTurnId: null, sourceImageId: null, lineage: { model: "t", n: [1, "é"] } });
      expect(m1.createdAt).toBeInstanceOf(Date);
      expect(await store.images.meta(id)).toEqual(m1);
      const u = (await store.users.create("uploader")).user;
      expect(await store.images.bytes(u.id, id)).toBeNull();
      await store.images.grantUpload(u.id, id);
      await store.images.grantUpload(u.id, id);
      const got = await store.images.bytes(u.id, id);
      expect(got?.meta).toEqual(m1);
      expect(got!.bytes).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(got!.bytes).equals(Buffer.from(bytes))).toBe(true);
      expect(sha256Hex(got!.bytes)).toBe(id);
    });

    it("rejects ids that are not the sha256 of the bytes", async () => {
      const bytes = fakeImage("mismatch");
      await expect(store.images.put({ id: "0".repeat(64), bytes, mime: "image/png", width: 1, height: 1 })).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT });
      expect(await store.images.meta("not-a-hash")).toBeNull();
      await expect(store.images.grantUpload(MISSING, sha256Hex(bytes))).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    });

    it("applies the visibility rule, and deleting a conversation makes its images unreachable", async () => {
      const u = (await store.users.create("vis-u")).user;
      const v = (await store.users.create("vis-v")).user;
      const put = async (seed: string) => {
        const bytes = fakeImage(seed);
        return (await store.images.put({ id: sha256Hex(bytes), bytes, mime: "image/png", width: 2, height: 2 })).id;
      };
      const up = await put("uploaded"); // U uploads, sends it in conversation 1
      const shared = await put("shared"); // U uploads, sends it in conversations 1 and 2
      const out = await put("output"); // the engine's output in conversation 1
      const kept = await put("kept"); // uploaded, never sent
      for (const id of [up, shared, kept]) await store.images.grantUpload(u.id, id);
      const c1 = await store.conversations.create(u.id, "one");
      const c2 = await store.conversations.create(u.id, "two");
      const s1 = (await store.turns.sendMessage(u.id, c1.id, msg("edit", [up, shared])))!;
      await store.turns.attachImage(s1.assistant.id, out, "output", 0);
      await store.turns.sendMessage(u.id, c2.id, msg("again", [shared]));
      for (const id of [up, shared, out, kept]) {
        expect(await store.images.visibleTo(u.id, id)).toBe(true);
        expect(await store.images.visibleTo(v.id, id)).toBe(false);
        expect(await store.images.bytes(v.id, id)).toBeNull();
      }
      // V cannot attach U's images to V's own conversation by id.
      const cv = await store.conversations.create(v.id, "v");
      await expect(store.turns.sendMessage(v.id, cv.id, msg("steal", [up]))).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
      expect(await store.turns.count(cv.id)).toBe(0);
      expect((await store.images.latestInConversation(c1.id))?.id).toBe(out);
      const images1 = await store.turns.images(s1.user.id);
      expect(images1.map((i) => [i.image.id, i.role, i.ord])).toEqual([[up, "input", 0], [shared, "input", 1]]);

      expect(await store.conversations.delete(u.id, c1.id)).toBe(true);
      expect(await store.images.visibleTo(u.id, up)).toBe(false);
      expect(await store.images.bytes(u.id, up)).toBeNull();
      expect(await store.images.visibleTo(u.id, out)).toBe(false);
      expect(await store.images.visibleTo(u.id, shared)).toBe(true); // still in conversation 2
      expect(await store.images.visibleTo(u.id, kept)).toBe(true); // never attached to c1
      expect(await store.images.meta(up)).not.toBeNull(); // rows stay, content-addressed
      expect(await store.images.latestInConversation(c1.id)).toBeNull();
      for (const bad of BAD_IDS) {
        expect(await store.images.visibleTo(bad, up)).toBe(false);
        expect(await store.images.bytes(bad, up)).toBeNull();
        expect(await store.images.latestInConversation(bad)).toBeNull();
      }
    });
  });
});

function msg(text: string, imageIds: string[] = []) {
  return { text, task: "AUTO" as const, kind: null, params: {}, seed: null, imageIds };
}
