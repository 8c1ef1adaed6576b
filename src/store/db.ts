/**
 * Opens the database: node-postgres when a DATABASE_URL is given, embedded PGlite otherwise
 * (in `${dataDir}/pglite`, or in memory for "memory://"). Applies the drizzle-kit migrations.
 * This is the only file that imports pg or PGlite.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PGlite } from "@electric-sql/pglite";
import { sql } from "drizzle-orm";
import { drizzle as drizzlePg } from "drizzle-orm/node-postgres";
import { migrate as migratePg } from "drizzle-orm/node-postgres/migrator";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { migrate as migratePglite } from "drizzle-orm/pglite/migrator";
import pg from "pg";
import { AppError, ErrorCode } from "../errors.js";
import * as schema from "./schema.js";

export type Orm = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  kind: "pglite" | "pg";
  /** The drizzle handle over `schema`. */
  orm: Orm;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Set: node-postgres against that server. */
  databaseUrl?: string;
  /** PGlite lives in `${dataDir}/pglite`; "memory://" keeps it in memory (tests). */
  dataDir: string;
}

/** The migrations folder, relative to this source file so any cwd works. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations", import.meta.url));

/** Any fixed 64-bit number: serialises migrations of processes sharing one server. */
const MIGRATION_LOCK_KEY = 7_240_311_905_118_042;

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, "//***@");
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  return opts.databaseUrl ? openPg(opts.databaseUrl) : openPglite(opts.dataDir);
}

async function openPg(url: string): Promise<Database> {
  // A connection that cannot be opened in 10 s fails (UNAVAILABLE) instead of holding a request,
  // or /readyz, for as long as the OS takes to give up on an unreachable host.
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 10_000 });
  pool.on("error", () => {
    /* An idle client lost (a PostgreSQL restart ends every connection): the pool drops it and
       opens a new one on the next query, so the server recovers without a restart. */
  });
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new AppError(ErrorCode.UNAVAILABLE, `cannot connect to PostgreSQL at ${redact(url)}`, { cause });
  }
  try {
    // Two processes may start at once: one migrates, the other waits and then finds nothing to do.
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await migratePg(drizzlePg(client, { schema }), { migrationsFolder: MIGRATIONS_DIR });
    } finally {
      await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } catch (cause) {
    client.release(true);
    await pool.end().catch(() => undefined);
    throw new AppError(ErrorCode.INTERNAL, `migrating PostgreSQL at ${redact(url)} failed`, { cause });
  }
  client.release();
  const orm = drizzlePg(pool, { schema }) as unknown as Orm;
  let closed = false;
  return {
    kind: "pg",
    orm,
    ping: () => pingOf(orm),
    async close() {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
}

/** Data dirs this process holds open (a second PGlite on one dir would corrupt it). */
const heldHere = new Set<string>();

/** Takes `${dir}.lock` (pid inside); a lock whose process is gone is taken over. */
function acquireDirLock(dir: string): () => void {
  const lockPath = `${dir}.lock`;
  const busy = (who: string) =>
    new AppError(
      ErrorCode.UNAVAILABLE,
      `the PGlite data directory ${dir} is in use by ${who}; stop it, or set DATABASE_URL or another DATA_DIR`,
    );
  if (heldHere.has(dir)) throw busy("this process");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(dir);
      const release = () => {
        heldHere.delete(dir);
        try {
          if (readFileSync(lockPath, "utf8") === String(process.pid)) unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
      process.once("exit", release);
      return () => {
        process.removeListener("exit", release);
        release();
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number(readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) throw busy(`process ${pid}`);
      if (pid === process.pid) throw busy("this process");
      unlinkSync(lockPath); // stale: its process is gone
    }
  }
  throw busy("another process");
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * PGlite's own start parameters, and shared_buffers at 16 MB instead of PostgreSQL's 128 MB:
 * PGlite keeps that pool in its WebAssembly memory and touches all of it at start, so it is
 * resident from the first second (130 MB at idle). PGlite reads its files through the OS, whose
 * page cache holds what a one-server store reads often; 16 MB is what PostgreSQL sizes for a
 * small machine. See README "Memory at rest".
 */
const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"];

/** How often embedded PGlite refreshes its planner statistics (it has no autovacuum to do it). */
const PGLITE_ANALYZE_MS = 10 * 60_000;

const PGLITE_INIT = fileURLToPath(new URL("./pglite-init.mjs", import.meta.url));

/** initdb in a child process (pglite-init.mjs says why), so its memory is not this process's. */
function initPgliteDir(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PGLITE_INIT, dir], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => void (stderr = (stderr + chunk.toString()).slice(-2000)));
    child.on("error", reject);
    child.on("exit", (code, signal) => (code === 0 ? resolve() : reject(new Error(`PGlite initdb (${PGLITE_INIT}) exited with ${code ?? signal}: ${stderr.trim()}`))));
  });
}

async function openPglite(dataDir: string): Promise<Database> {
  const memory = dataDir.startsWith("memory://");
  let dir: string | undefined;
  let unlock = () => {};
  if (!memory) {
    dir = path.resolve(dataDir, "pglite");
    mkdirSync(dir, { recursive: true });
    unlock = acquireDirLock(dir);
  }
  let client: PGlite;
  try {
    if (dir !== undefined && !existsSync(path.join(dir, "PG_VERSION"))) await initPgliteDir(dir);
    client = await PGlite.create({ ...(dir === undefined ? {} : { dataDir: dir }), startParams: PGLITE_START_PARAMS });
  } catch (cause) {
    unlock();
    throw new AppError(ErrorCode.UNAVAILABLE, `cannot open the PGlite database in ${dir ?? dataDir}`, { cause });
  }
  const orm = drizzlePglite(client, { schema });
  try {
    await migratePglite(orm, { migrationsFolder: MIGRATIONS_DIR });
  } catch (cause) {
    await client.close().catch(() => undefined);
    unlock();
    throw new AppError(ErrorCode.INTERNAL, "migrating the PGlite database failed", { cause });
  }
  // PGlite runs no autovacuum, so nothing else refreshes the planner's statistics. Without them
  // a page of a long history was planned as a bitmap scan of every row before the cursor and a
  // sort (measured: 999 rows read for a page of 21); with them, an index scan that stops at 21.
  // ANALYZE samples at most 30,000 rows a table: about 70 ms at 10,000 turns.
  const analyze = (): Promise<unknown> => client.exec("analyze").catch(() => undefined);
  await analyze();
  const analyzer = setInterval(() => void analyze(), PGLITE_ANALYZE_MS);
  analyzer.unref();
  let closed = false;
  return {
    kind: "pglite",
    orm: orm as unknown as Orm,
    ping: () => pingOf(orm as unknown as Orm),
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(analyzer);
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

async function pingOf(orm: Orm): Promise<boolean> {
  try {
    await orm.execute(sql`select 1`);
    return true;
  } catch {
    return false;
  }
}
