/**
 * `npm start`: serve the API on PORT with embedded PGlite in DATA_DIR (or PostgreSQL at
 * DATABASE_URL). Prints how to authenticate; on the first start, the admin's API key, once.
 * SIGTERM/SIGINT: stop accepting, drain HTTP, close sockets with 1001, close the database.
 */
import "reflect-metadata";
import { loadConfig } from "./config.js";
import { startApp } from "./app.js";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = (line: string): void => {
    if (config.logLevel !== "silent") console.error(line);
  };
  const app = await startApp(config, log);
  const where = config.databaseUrl === undefined ? `embedded PGlite in ${config.dataDir}/pglite` : "PostgreSQL at DATABASE_URL";
  // Scaled out, an API node runs jobs only with an engine; workers are `npx unipic worker`.
  const jobs = config.redisUrl === undefined ? "" : `; jobs and events: Redis at REDIS_URL (${config.engineEnabled ? "this node also runs a worker" : "ENGINE=off: workers run the jobs"})`;
  console.log(`UniPic Studio listening on ${app.server.url}/graphql (WebSocket ${app.server.wsUrl}); database: ${where}${jobs}`);
  if (app.adminKey !== null) {
    console.log("First start: created the admin user. Its key is shown only now; keep it.");
    console.log(`API key: ${app.adminKey}`);
  }
  console.log('Authenticate with the header "Authorization: Bearer <API key>" (graphql-ws: connectionParams.authorization).');
  console.log("More users: npx unipic users add NAME");

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error: unknown) => {
  console.error(`unipic: failed to start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
