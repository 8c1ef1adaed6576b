/**
 * Scaled-out operations (issue 15, item 4) against a Redis of the test's own (a `redis-server` on
 * a free port, so that stopping it touches no other test) and the real PostgreSQL:
 * - with no worker alive, /readyz is 503 and says why; a turn sent then waits QUEUED and says
 *   so (queue position), and runs once a worker starts;
 * - Redis goes away (killed: its data is gone, as after a crash without persistence) and comes
 *   back on the same port: /readyz is 503 meanwhile, a turn sent during the outage is committed
 *   and answered at once (queue position unknown: null), /metrics still answers (NaN where unknown), both processes
 *   reconnect by themselves, and every turn completes: none is lost.
 * Skipped, saying why, when PostgreSQL or redis-server is missing.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk } from "../helpers/app.js";
import { spawnServer, spawnWorker, type ServerProcess, type Worker } from "../helpers/process.js";
import { WAIT_MS } from "../helpers/wait.js";
import { freshDatabase, unreachable } from "./services.js";

const skip = (await unreachable()) ?? (spawnSync("redis-server", ["--version"]).status === 0 ? null : "redis-server is not installed");
if (skip !== null) console.warn(`scale-out outage test skipped: ${skip}`);

const FAST = { steps: 4, diffusionSteps: 5 };
const TURN = `query($id: ID!) { node(id: $id) { ... on Turn { status queuePosition } } }`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A throwaway Redis with no persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return child;
}

async function readyz(node: ServerProcess): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

describe.skipIf(skip !== null)(`an API node and a worker over a Redis that goes away${skip === null ? "" : ` (skipped: ${skip})`}`, () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let redis: ChildProcess;
  let port: number;
  let env: Record<string, string>;
  let api: ServerProcess;
  let worker: Worker | undefined;
  let key: string;
  let conversationId: string;
  let dropDb: () => Promise<void>;

  const dir = (): string => {
    const d = mkdtempSync(path.join(tmpdir(), "unipic-outage-"));
    dirs.push(d);
    return d;
  };
  const send = async (text: string, params: Record<string, number> = FAST): Promise<string> =>
    (await gqlOk(api.url, key, SEND_MESSAGE, { input: { conversationId, text, params } })).sendMessage.assistantTurn.id;
  const turn = async (id: string): Promise<{ status: string; queuePosition: number | null }> => (await gqlOk(api.url, key, TURN, { id })).node;

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    const db = await freshDatabase();
    dropDb = db.drop;
    env = { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: "outage", ENGINE_THREADS: "1", ENGINE_BATCH: "2" };
    api = await spawnServer({ ...env, ENGINE: "off", DATA_DIR: dir() });
    children.push(api.child);
    key = api.apiKey!;
    conversationId = (await gqlOk(api.url, key, CREATE_CONVERSATION, { title: "outage" })).createConversation.id;
  });

  afterAll(async () => {
    for (const c of [...children, redis]) if (c !== undefined && c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await dropDb?.();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("is not ready while no worker is alive; a turn sent then waits QUEUED and runs once one starts", async () => {
    const before = await readyz(api);
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ status: "not ready", database: true, redis: true, workers: 0 });
    expect(before.body.reason).toMatch(/no engine worker is alive/);
    const id = await send("a red circle");
    await expect.poll(() => turn(id), { timeout: 10_000 }).toEqual({ status: "QUEUED", queuePosition: 0 });

    const data = dir();
    worker = await spawnWorker({ ...env, DATA_DIR: data }, path.join(data, "worker.log"));
    children.push(worker.child);
    await expect.poll(async () => (await readyz(api)).status, { timeout: 15_000 }).toBe(200);
    await expect.poll(async () => (await turn(id)).status, { timeout: WAIT_MS }).toBe("COMPLETED");
  });

  it("comes back by itself when Redis is killed and restarted; the turns sent around the outage complete", async () => {
    expect(worker).toBeDefined();
    // Kill it while the worker runs some turns and others wait in Redis: those jobs die with it.
    const beforeOutage: string[] = [];
    for (let i = 0; i < 5; i++) beforeOutage.push(await send(`a blue square ${i}`, { steps: 16, diffusionSteps: 10 }));
    await expect.poll(async () => (await Promise.all(beforeOutage.map(turn))).some((t) => t.status === "RUNNING"), { timeout: WAIT_MS }).toBe(true);
    expect((await Promise.all(beforeOutage.map(turn))).filter((t) => t.status === "QUEUED").length).toBeGreaterThan(0);
    redis.kill("SIGKILL");
    await new Promise((resolve) => redis.once("exit", resolve));
    await expect.poll(async () => (await readyz(api)).body.redis, { timeout: 10_000 }).toBe(false);
    expect((await readyz(api)).status).toBe(503);
    // The database still takes the turn: it is committed and answered at once (its position is
    // unknown meanwhile), and gets its job later. A scrape answers too, without queue figures.
    const sent = await gqlOk(api.url, key, SEND_MESSAGE, { input: { conversationId, text: "a green triangle", params: FAST } });
    expect(sent.sendMessage.assistantTurn).toMatchObject({ status: "QUEUED", queuePosition: null });
    const duringOutage = sent.sendMessage.assistantTurn.id as string;
    const scrape = await fetch(`${api.url}/metrics`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(10_000) });
    expect(scrape.status).toBe(200);
    const metrics = await scrape.text();
    // prom-client writes NaN as "Nan" (Prometheus parses it case-insensitively).
    expect(metrics).toMatch(/^unipic_queue_depth nan$/im);
    expect(metrics).toMatch(/^unipic_workers_alive nan$/im);

    redis = await startRedis(port);
    await expect.poll(async () => (await readyz(api)).status, { timeout: 30_000 }).toBe(200);
    // The killed Redis lost every job: the reconciler (at most RECONCILE_MS, 30 s) finds the
    // committed turns without one, and the worker that outlived the outage runs them.
    for (const id of [...beforeOutage, duringOutage]) await expect.poll(async () => (await turn(id)).status, { timeout: 90_000, interval: 500 }).toBe("COMPLETED");
    const after = await send("a yellow circle");
    await expect.poll(async () => (await turn(after)).status, { timeout: WAIT_MS }).toBe("COMPLETED");
    expect(api.child.exitCode).toBeNull();
    expect(worker!.child.exitCode).toBeNull();
  });
});
