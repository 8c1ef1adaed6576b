/**
 * The composition root: opens the database, makes sure an admin exists, builds the services and
 * starts the server and the local admin socket. Used by `npm start` (main.ts) and by tests, which
 * start real servers on free ports.
 */
import { engineOptions, type Config } from "./config.js";
import { startAdminSocket, type AdminSocket } from "./api/admin.js";
import { startServer, type RunningServer } from "./api/server.js";
import { loadManifest, type Manifest } from "./engine/manifest.js";
import { EnginePool } from "./engine/pool.js";
import { redactingLog } from "./log.js";
import type { EngineClient } from "./engine/types.js";
import { createStore, openDatabase, patientStore, type Database, type Store } from "./store/index.js";
import { createTurnEvents } from "./turns/events.js";
import { QuotaGuard } from "./turns/quotas.js";
import { EngineRunner } from "./turns/runner.js";
import { startScaledNode, type ScaledNode } from "./redis/node.js";
import type { Services } from "./turns/service.js";

export interface App {
  server: RunningServer;
  services: Services;
  database: Database;
  store: Store;
  /** Null when ENGINE=off or the model failed to load (then /readyz says not ready). */
  engine: EngineClient | null;
  /** Set on the first start with an empty database: the admin's key, to print once. */
  adminKey: string | null;
  close(): Promise<void>;
}

/** Creates the admin user when there are no users at all; returns its key, or null. */
export async function ensureAdmin(store: Store): Promise<string | null> {
  // Atomic across nodes starting together on one database: one admin, one key printed.
  return store.users.createFirstAdmin("admin");
}

/** Loads the model; a failure is logged and leaves the server up but not ready. */
async function loadEngine(config: Config, log: (line: string) => void): Promise<EngineClient | null> {
  if (!config.engineEnabled) return null;
  try {
    return await EnginePool.load({ ...engineOptions(config), log }, config.engineWorkers);
  } catch (error) {
    log(`engine: not loaded: ${(error as Error)?.message ?? String(error)}`);
    return null;
  }
}

/**
 * The model's manifest without its engine (ENGINE=off, or a model that failed to load): messages
 * are still checked against it. Null, logged, when it cannot be read.
 */
async function readManifest(config: Config, log: (line: string) => void): Promise<Manifest | null> {
  try {
    return await loadManifest(config.modelDir);
  } catch (error) {
    log(`parameters: not checked against a model (${(error as Error)?.message ?? String(error)})`);
    return null;
  }
}

export async function startApp(config: Config, sink: (line: string) => void = () => undefined): Promise<App> {
  // No API key, image bytes or data URL reaches the log, whatever a call site passes (src/log.ts).
  const log = redactingLog(sink);
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let server: RunningServer | undefined;
  let admin: AdminSocket | undefined;
  let engine: EngineClient | null = null;
  let scaled: ScaledNode | null = null;
  try {
    const store = createStore(database);
    const adminKey = await ensureAdmin(store);
    engine = await loadEngine(config, log);
    // REDIS_URL: a node of a scaled-out deployment (jobs and events through Redis; src/redis).
    if (config.redisUrl !== undefined) scaled = await startScaledNode({ config: { ...config, redisUrl: config.redisUrl }, store, engine, api: true, log });
    const events = scaled?.events ?? createTurnEvents();
    // The runner is built from what it needs (store, events, engine), so it needs no services.
    // Its store waits out a database restart, so a job that ran meanwhile is stored, not lost.
    const runner = engine === null || scaled !== null ? null : new EngineRunner({ store: patientStore(store, { log }), events, engine, log });
    const manifest = engine?.manifest ?? (await readManifest(config, log));
    const quotas = new QuotaGuard({ quotas: config.quotas, store, jobMs: () => engine?.averageJobMs });
    const services: Services = { config, store, ping: () => database.ping(), ...events, runner: scaled?.queue ?? runner, model: engine?.manifest ?? (scaled === null ? null : manifest), manifest, quotas, queueStats: scaled?.stats ?? null };
    const loaded = engine;
    server = await startServer({ services, log, ready: () => (config.engineEnabled ? loaded !== null && loaded.ready : true) }, config.port, config.host);
    admin = await startAdminSocket(config.dataDir, store, log);
    // Turns a stopped server left QUEUED or RUNNING run again, from their stored seeds (scaled
    // out, the reconciler gives them jobs instead: another node may be running them).
    const node = scaled;
    const resumed = (await runner?.resumeUnfinished()) ?? 0;
    if (resumed > 0) log(`resumed ${resumed} unfinished turn(s)`);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await admin?.close();
        await server?.close();
        await node?.close();
        await loaded?.close();
        await database.close();
      })());
    return { server, services, database, store, engine, adminKey, close };
  } catch (error) {
    await admin?.close();
    await server?.close();
    await scaled?.close().catch(() => undefined);
    await engine?.close();
    await database.close();
    throw error;
  }
}
