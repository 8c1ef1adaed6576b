/**
 * `npx unipic worker`: an engine worker of a scaled-out deployment, and nothing else. It reads
 * DATABASE_URL, REDIS_URL, MODEL_DIR, ENGINE_BATCH and ENGINE_WORKERS (and the other ENGINE_*),
 * takes turn jobs from the shared queue, runs them and stores their results; it listens on no
 * port. SIGTERM/SIGINT: running jobs are handed back to the queue (their turns go back to
 * QUEUED) and the worker exits.
 */
import "reflect-metadata";
import { engineOptions, loadConfig } from "./config.js";
import { EnginePool } from "./engine/pool.js";
import { AppError } from "./errors.js";
import { redactingLog } from "./log.js";
import { startScaledNode } from "./redis/node.js";
import { createStore, openDatabase } from "./store/index.js";

async function main(): Promise<void> {
  const config = loadConfig();
  const redisUrl = config.redisUrl;
  if (redisUrl === undefined) throw AppError.badInput("REDIS_URL", "a redis:// URL: a worker takes its jobs from Redis (and needs DATABASE_URL)", "unset");
  if (!config.engineEnabled) throw AppError.badInput("ENGINE", "on (a worker runs the engine)", "off");
  const log = redactingLog((line) => {
    if (config.logLevel !== "silent") console.error(line);
  });
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let engine: EnginePool | undefined;
  try {
    engine = await EnginePool.load({ ...engineOptions(config), log }, config.engineWorkers);
    const node = await startScaledNode({ config: { ...config, redisUrl }, store: createStore(database), engine, api: false, log });
    console.log(`UniPic worker ready: ${config.engineBatch * config.engineWorkers} job(s) at once (ENGINE_BATCH ${config.engineBatch} x ENGINE_WORKERS ${config.engineWorkers}), model ${engine.manifest.name}`);
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log(`${signal}: handing back running jobs and stopping`);
      const force = setTimeout(() => process.exit(1), 15_000);
      force.unref();
      void (async () => {
        await node.close();
        await engine?.close();
        await database.close();
      })().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error);
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  } catch (error) {
    await engine?.close();
    await database.close();
    throw error;
  }
}

main().catch((error: unknown) => {
  console.error(`unipic worker: failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
