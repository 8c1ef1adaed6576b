/** Opening, migrating, locking and restarting; both drivers give identical results. */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { createStore, MIGRATIONS_DIR, openDatabase, sha256Hex, type Database } from "../../src/store/index.js";
import { fakeImage, freshPgDatabase, freshPgliteDataDir } from "../helpers/db.js";

const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as { entries: unknown[] };

async function appliedMigrations(db: Database): Promise<number> {
  const res = (await db.orm.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`)) as unknown as { rows: Array<{ n: number }> };
  return Number(res.rows[0]!.n);
}

async function sampleData(db: Database) {
  const store = createStore(db);
  const { user, apiKey } = await store.users.create("persist");
  const c = await store.conversations.create(user.id, "kept");
  const bytes = fakeImage("persisted image bytes", 3000);
  const id = sha256Hex(bytes);
  await store.images.put({ id, bytes, mime: "image/png", width: 10, height: 30, lineage: { a: 1 } });
  const sent = (await store.turns.sendMessage(user.id, c.id, { text: "hi", task: "EDIT", kind: "edit", params: { k: [1, 2] }, seed: 9_007_199_254_740_991, imageIds: [] }))!;
  await store.images.grantUpload(user.id, id);
  await store.turns.attachImage(sent.assistant.id, id, "output", 0);
  return { store, user, apiKey, c, id, bytes, sent };
}

/** Everything a client sees of the sample, minus generated ids and timestamps. */
async function snapshot(db: Database, s: Awaited<ReturnType<typeof sampleData>>) {
  const store = createStore(db);
  const got = (await store.images.bytes(s.user.id, s.id))!;
  const turns = (await store.turns.page(s.c.id, { first: 10 })).items;
  const strip = <T extends object>(o: T) =>
    Object.fromEntries(
      Object.entries(o).map(([k, v]) => [k, v instanceof Date ? "Date" : typeof v === "string" && /^[0-9a-f-]{36}$/.test(v) ? "uuid" : v]),
    );
  return {
    meta: strip(got.meta),
    bytes: Buffer.from(got.bytes).toString("base64"),
    isUint8Array: got.bytes instanceof Uint8Array,
    turns: turns.map(strip),
    images: (await store.turns.images(s.sent.assistant.id)).map((i) => ({ ...i, image: strip(i.image) })),
    user: strip((await store.users.byApiKey(s.apiKey))!),
  };
}

describe("PGlite data dir", () => {
  it("is created by a child process (its initdb memory is not the server's) and runs with 16 MB of shared buffers", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "unipic-store-init-"));
    try {
      const db = await openDatabase({ dataDir });
      try {
        expect(existsSync(path.join(dataDir, "pglite", "PG_VERSION"))).toBe(true);
        expect(await appliedMigrations(db)).toBe(journal.entries.length);
        const shown = (await db.orm.execute(sql`show shared_buffers`)) as unknown as { rows: Array<{ shared_buffers: string }> };
        expect(shown.rows[0]!.shared_buffers).toBe("16MB");
      } finally {
        await db.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("migrates idempotently, keeps data across restarts, and refuses a second opener", async () => {
    const { dataDir, remove } = await freshPgliteDataDir();
    try {
      const db1 = await openDatabase({ dataDir });
      expect(db1.kind).toBe("pglite");
      expect(await appliedMigrations(db1)).toBe(journal.entries.length);
      const s = await sampleData(db1);
      const before = await snapshot(db1, s);

      // In use: by this process, then by another live process (our parent), per the lock file.
      await expect(openDatabase({ dataDir })).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
      await db1.close();
      await db1.close(); // idempotent
      writeFileSync(path.join(dataDir, "pglite.lock"), String(process.ppid));
      const busy = await openDatabase({ dataDir }).catch((e: unknown) => e);
      expect(busy).toMatchObject({ code: ErrorCode.UNAVAILABLE });
      expect(String((busy as Error).message)).toMatch(/in use by process \d+/);
      // A lock left by a dead process is taken over.
      writeFileSync(path.join(dataDir, "pglite.lock"), "2147483646");

      const db2 = await openDatabase({ dataDir });
      try {
        expect(await appliedMigrations(db2)).toBe(journal.entries.length);
        expect(await snapshot(db2, s)).toEqual(before);
        const store2 = createStore(db2);
        expect((await store2.users.byApiKey(s.apiKey))?.id).toBe(s.user.id);
        expect((await store2.conversations.get(s.user.id, s.c.id))?.title).toBe("kept");
        expect(await store2.turns.count(s.c.id)).toBe(2);
        expect(await db2.ping()).toBe(true);
      } finally {
        await db2.close();
      }
      expect(await db2.ping()).toBe(false);
    } finally {
      remove();
    }
  });
});

describe.runIf(process.env.DATABASE_URL)("PostgreSQL", () => {
  it("migrates once when several processes start together, and matches PGlite exactly", async () => {
    const { url, drop } = await freshPgDatabase();
    const { dataDir, remove } = await freshPgliteDataDir();
    try {
      const opened = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: url, dataDir: "unused" })));
      for (const db of opened) expect(db.kind).toBe("pg");
      expect(await appliedMigrations(opened[0]!)).toBe(journal.entries.length);
      await Promise.all(opened.map((db) => db.close()));
      const pgDb = await openDatabase({ databaseUrl: url, dataDir: "unused" });
      const liteDb = await openDatabase({ dataDir });
      try {
        expect(await appliedMigrations(pgDb)).toBe(journal.entries.length);
        const onPg = await snapshot(pgDb, await sampleData(pgDb));
        const onLite = await snapshot(liteDb, await sampleData(liteDb));
        expect(onPg).toEqual(onLite);
        expect(onPg.bytes).toBe(Buffer.from(fakeImage("persisted image bytes", 3000)).toString("base64"));
        expect(onPg.isUint8Array).toBe(true);
      } finally {
        await pgDb.close();
        await liteDb.close();
      }
    } finally {
      await drop();
      remove();
    }
  });

  it("reports an unreachable server as UNAVAILABLE", async () => {
    await expect(openDatabase({ databaseUrl: "postgres://postgres@127.0.0.1:1/none", dataDir: "unused" })).rejects.toMatchObject({
      code: ErrorCode.UNAVAILABLE,
    });
  });
});
