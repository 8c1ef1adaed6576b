/**
 * The composition root: opens the database, makes sure an admin exists, builds the services and
 * starts the server and the local admin socket. Used by `npm start` (main.ts) and by tests, which
 * start real servers on free ports.
 */
import type { Config } from "./config.js";
import { startAdminSocket, type AdminSocket } from "./api/admin.js";
import { startServer, type RunningServer } from "./api/server.js";
import { createServices, type Services } from "./api/service.js";
import { createStore, openDatabase, type Database, type Store } from "./store/index.js";

export interface App {
  server: RunningServer;
  services: Services;
  database: Database;
  store: Store;
  /** Set on the first start with an empty database: the admin's key, to print once. */
  adminKey: string | null;
  close(): Promise<void>;
}

/** Creates the admin user when there are no users at all; returns its key, or null. */
export async function ensureAdmin(store: Store): Promise<string | null> {
  if ((await store.users.count()) > 0) return null;
  const { apiKey } = await store.users.create("admin", { isAdmin: true });
  return apiKey;
}

export async function startApp(config: Config, log: (line: string) => void = () => undefined): Promise<App> {
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let server: RunningServer | undefined;
  let admin: AdminSocket | undefined;
  try {
    const store = createStore(database);
    const adminKey = await ensureAdmin(store);
    const services = createServices(config, store, () => database.ping());
    server = await startServer({ services, log }, config.port, config.host);
    admin = await startAdminSocket(config.dataDir, store, log);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await admin?.close();
        await server?.close();
        await database.close();
      })());
    return { server, services, database, store, adminKey, close };
  } catch (error) {
    await admin?.close();
    await server?.close();
    await database.close();
    throw error;
  }
}
