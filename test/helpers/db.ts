/**
 * Test drivers for the store: PGlite in memory always, PostgreSQL when DATABASE_URL is set.
 * On PostgreSQL each call makes a fresh database (dropped by cleanup), so test files running in
 * parallel, or other suites on the same server, never see each other's rows.
 */
import { createHash, randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { MIGRATIONS_DIR, openDatabase, type Database } from "../../src/store/index.js";
import { SLOWDOWN } from "./wait.js";

export interface TestDriver {
  name: "pglite" | "pg";
  /** A fresh, migrated, empty database. */
  fresh(): Promise<{ url?: string; db: Database; cleanup(): Promise<void> }>;
}

const adminUrl = process.env.DATABASE_URL || undefined;

/** Creates an empty database next to DATABASE_URL's; returns its URL and a dropper. */
export async function freshPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!adminUrl) throw new Error("DATABASE_URL is not set");
  const name = `unipic_store_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

function pgliteVersion(): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve("@electric-sql/pglite"));
  while (!existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  return (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version;
}

function migrationsKey(): string {
  const h = createHash("sha256").update(pgliteVersion());
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(name).update(readFileSync(p));
    }
  };
  walk(MIGRATIONS_DIR);
  return h.digest("hex").slice(0, 16);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A migrated PGlite data dir in the OS temp dir, built once per PGlite version and migrations
 * content (initdb costs 5-20 s; copying the result costs well under one). Safe across workers.
 */
export async function pgliteTemplateDir(): Promise<string> {
  const dir = path.join(tmpdir(), `unipic-pglite-template-${migrationsKey()}`);
  const ready = path.join(dir, "ready");
  const lock = `${dir}.lock`;
  // initdb takes 5-20 s alone, minutes on a machine busy with other work.
  const deadline = Date.now() + 180_000 * SLOWDOWN;
  while (!existsSync(ready)) {
    let mine = false;
    try {
      mkdirSync(lock);
      mine = true;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120_000 * SLOWDOWN || Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      else await sleep(250);
    }
    if (!mine) continue;
    try {
      if (existsSync(ready)) break;
      const building = `${dir}.building-${process.pid}`;
      rmSync(building, { recursive: true, force: true });
      const db = await openDatabase({ dataDir: building });
      await db.close();
      writeFileSync(path.join(building, "ready"), new Date().toISOString());
      rmSync(dir, { recursive: true, force: true });
      renameSync(building, dir);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
  return dir;
}

/** A fresh data dir (a copy of the template); `openDatabase({ dataDir })` opens it. */
export async function freshPgliteDataDir(): Promise<{ dataDir: string; remove(): void }> {
  const template = await pgliteTemplateDir();
  const dataDir = mkdtempSync(path.join(tmpdir(), "unipic-store-test-"));
  cpSync(path.join(template, "pglite"), path.join(dataDir, "pglite"), { recursive: true });
  return { dataDir, remove: () => rmSync(dataDir, { recursive: true, force: true }) };
}

export const pgliteDriver: TestDriver = {
  name: "pglite",
  async fresh() {
    const { dataDir, remove } = await freshPgliteDataDir();
    const db = await openDatabase({ dataDir });
    return {
      db,
      async cleanup() {
        await db.close();
        remove();
      },
    };
  },
};

export const pgDriver: TestDriver = {
  name: "pg",
  async fresh() {
    const { url, drop } = await freshPgDatabase();
    const db = await openDatabase({ databaseUrl: url, dataDir: "unused" });
    return {
      url,
      db,
      async cleanup() {
        await db.close();
        await drop();
      },
    };
  },
};

/** The drivers to run: PGlite always, pg when DATABASE_URL is set. */
export const drivers: TestDriver[] = adminUrl ? [pgliteDriver, pgDriver] : [pgliteDriver];

/** A valid sha256-addressed test image (not a real PNG; the store does not decode). */
export function fakeImage(seed: string, size = 64) {
  const bytes = new Uint8Array(size);
  const src = Buffer.from(seed.repeat(Math.ceil(size / Math.max(1, seed.length))), "utf8");
  bytes.set(src.subarray(0, size));
  bytes[0] = 0; // include a zero and a high byte: bytea must be binary-safe
  bytes[size - 1] = 255;
  return bytes;
}

/** Where a test server keeps its data: a fresh PGlite copy, or a fresh database beside DATABASE_URL's. */
export interface DataLocation {
  dataDir: string;
  databaseUrl?: string;
  /** DATA_DIR (and DATABASE_URL) for a server process. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function freshLocation(): Promise<DataLocation> {
  if (adminUrl) {
    const db = await freshPgDatabase();
    const dataDir = mkdtempSync(path.join(tmpdir(), "unipic-test-"));
    return {
      dataDir,
      databaseUrl: db.url,
      env: { DATA_DIR: dataDir, DATABASE_URL: db.url },
      cleanup: async () => {
        await db.drop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const fresh = await freshPgliteDataDir();
  return { dataDir: fresh.dataDir, env: { DATA_DIR: fresh.dataDir }, cleanup: async () => fresh.remove() };
}
