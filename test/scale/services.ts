/**
 * The real Redis and PostgreSQL the scale-out tests run against (127.0.0.1 unless REDIS_URL /
 * DATABASE_URL say otherwise), each test with its own Redis key prefix and its own fresh
 * database. `unreachable()` names what is missing, so a test can skip with that reason.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { Redis } from "ioredis";
import pg from "pg";

export const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PG_ADMIN_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("timeout", () => (socket.destroy(), resolve(false)));
    socket.once("error", () => resolve(false));
  });
}

/** Null when both answer; otherwise why the scale-out tests cannot run here. */
export async function unreachable(): Promise<string | null> {
  const r = new URL(REDIS_URL);
  const p = new URL(PG_ADMIN_URL);
  const missing: string[] = [];
  if (!(await reachable(r.hostname, Number(r.port || 6379)))) missing.push(`Redis at ${r.host}`);
  if (!(await reachable(p.hostname, Number(p.port || 5432)))) missing.push(`PostgreSQL at ${p.host}`);
  return missing.length === 0 ? null : `${missing.join(" and ")} not reachable`;
}

/** A key prefix no other test uses; `dropPrefix` deletes its keys afterwards. */
export function freshPrefix(): string {
  return `test-${process.pid}-${randomBytes(4).toString("hex")}`;
}

export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = "0";
    do {
      const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (found.length > 0) await redis.del(...found);
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** An empty database on the PostgreSQL server; `drop` removes it. */
export async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `unipic_scale_${process.pid}_${randomBytes(4).toString("hex")}`;
  const run = async (sql: string): Promise<void> => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`create database "${name}"`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`drop database if exists "${name}" with (force)`) };
}
