/**
 * `unipic bench --memory`: resident memory of an idle server, the way `npm start` runs it (one
 * process: `node --import tsx src/main.ts`, the engine loaded in its worker threads), on each
 * store. `idle_rss_mb` lines: embedded PGlite on its first start (the database is created) and on
 * a later start of the same directory; PostgreSQL (a fresh database beside DATABASE_URL's) when
 * DATABASE_URL is set. RSS is read from /proc once it has settled: three samples a second apart
 * within 1% of each other, after the server printed its URL.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resident set of `pid` in MB, and its anonymous part (heap, WebAssembly memory, buffers). */
export function rssOf(pid: number): { rss: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024 };
}

/** Starts the server; resolves with the child, how long start-up took and its stdout, once it prints its URL. */
export function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; startMs: number; out: () => string }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => void (err = (err + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("npx unipic users add")) resolve({ child, startMs: performance.now() - t0, out: () => out });
    });
    child.on("exit", (code) => reject(new Error(`the server exited with ${code} before listening: ${err.trim()}`)));
  });
}

/** RSS once three samples a second apart agree within 1% (at most a minute of sampling). */
async function settledRss(pid: number): Promise<{ rss: number; anon: number; samples: number }> {
  const seen: Array<{ rss: number; anon: number }> = [];
  for (let i = 0; i < 60; i++) {
    await sleep(1000);
    seen.push(rssOf(pid));
    const last = seen.slice(-3).map((s) => s.rss);
    if (last.length === 3 && Math.max(...last) <= Math.min(...last) * 1.01) break;
  }
  return { ...seen.at(-1)!, samples: seen.length };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function measure(env: Record<string, string>, fields: Record<string, unknown>, emit: (m: Record<string, unknown>) => void): Promise<void> {
  const { child, startMs } = await startServer(env);
  try {
    const { rss, anon, samples } = await settledRss(child.pid!);
    emit({ metric: "idle_rss_mb", value: Math.round(rss), ...fields, anon_mb: Math.round(anon), start_ms: Math.round(startMs), samples });
  } finally {
    await stop(child);
  }
}

export async function memoryMetrics(emit: (m: Record<string, unknown>) => void, databaseUrl = process.env.DATABASE_URL): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "unipic-bench-memory-"));
  try {
    await measure({ DATA_DIR: dir }, { store: "pglite", start: "first" }, emit);
    await measure({ DATA_DIR: dir }, { store: "pglite", start: "again" }, emit);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (!databaseUrl) {
    emit({ metric: "idle_rss_mb", value: null, store: "pg", skipped: "DATABASE_URL is not set" });
    return;
  }
  const name = `unipic_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
    const url = new URL(databaseUrl);
    url.pathname = `/${name}`;
    const pgDir = await mkdtemp(path.join(os.tmpdir(), "unipic-bench-memory-"));
    try {
      await measure({ DATA_DIR: pgDir, DATABASE_URL: url.toString() }, { store: "pg", start: "first" }, emit);
    } finally {
      await rm(pgDir, { recursive: true, force: true });
    }
  } finally {
    await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
    await admin.end();
  }
}
