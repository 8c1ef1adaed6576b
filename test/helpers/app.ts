/**
 * Starts a real server (HTTP + graphql-ws on a free port) on embedded PGlite in a temp dir, or on
 * PostgreSQL when DATABASE_URL is set, and gives tests small clients for it.
 */
import "reflect-metadata";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { startApp, type App } from "../../src/app.js";
import { loadConfig, type Config } from "../../src/config.js";
import { freshLocation } from "./db.js";
import { waitFor } from "./wait.js";

export interface TestApp {
  app: App;
  config: Config;
  url: string;
  wsUrl: string;
  dataDir: string;
  databaseUrl?: string;
  adminKey: string;
  /** A new non-admin user; returns its key. */
  newUser(name?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A server on a fresh database: a copy of a migrated PGlite template (fast), or a new database
 * beside DATABASE_URL's. Given `dataDir` (and `databaseUrl`), it reopens that one instead, for
 * restart tests; the caller then owns their cleanup.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  reuse?: { dataDir: string; databaseUrl?: string },
  options: { /** Receives the server's log lines (as `npm start` prints them at LOG_LEVEL=info). */ log?: (line: string) => void } = {},
): Promise<TestApp> {
  let cleanup = async (): Promise<void> => undefined;
  let dataDir: string;
  let databaseUrl: string | undefined;
  if (reuse !== undefined) {
    dataDir = reuse.dataDir;
    databaseUrl = reuse.databaseUrl;
  } else {
    const fresh = await freshLocation();
    ({ dataDir, databaseUrl } = fresh);
    cleanup = fresh.cleanup;
  }
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    LOG_LEVEL: "silent",
    // API tests watch turns stay QUEUED; tests of live turns pass ENGINE: "on".
    ENGINE: "off",
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...env,
  });
  const app = await startApp(config, options.log);
  // A copied template or a reopened database may already hold users: make our own admin then.
  const adminKey = app.adminKey ?? (await app.store.users.create(`admin-${Date.now()}`, { isAdmin: true })).apiKey;
  return {
    app,
    config,
    url: app.server.url,
    wsUrl: app.server.wsUrl,
    dataDir,
    databaseUrl,
    adminKey,
    newUser: async (name = `user-${Math.random().toString(36).slice(2, 8)}`) => (await app.store.users.create(name)).apiKey,
    close: async () => {
      await app.close();
      await cleanup();
    },
  };
}

/**
 * For tests that follow a turn from its start but, like any client, subscribe only once
 * sendMessage has answered: on a busy machine a short job can finish before the subscription is
 * up (its SNAPSHOT is then already final, and no STEP or TOKEN is seen), or run ahead of a
 * cancel. From now on each new turn's job waits until someone watches the turn, as if the client
 * had subscribed first. A turn nobody watches still starts, after WAIT_MS.
 */
export function startJobsWhenWatched(t: TestApp): void {
  const { services } = t.app;
  const runner = services.runner;
  if (runner === null) return;
  const enqueue = runner.enqueue.bind(runner);
  runner.enqueue = (turn) => {
    void waitFor(`a subscriber to turn ${turn.id}`, () => services.turnHub.watched(turn.id), Boolean, { intervalMs: 5, maxIntervalMs: 5 })
      .catch(() => undefined)
      .then(() => enqueue(turn));
  };
}

export interface GqlResult<T = Record<string, any>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, any>; path?: unknown[] }>;
}

/** POSTs one GraphQL operation over HTTP. */
export async function gql<T = Record<string, any>>(
  url: string,
  key: string | null,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GqlResult<T>> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${url}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as GqlResult<T>;
  return { ...body, status: res.status };
}

/** Like gql, but fails the test on any error and returns data. */
export async function gqlOk<T = Record<string, any>>(url: string, key: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const result = await gql<T>(url, key, query, variables);
  if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  return result.data as T;
}

export function wsClient(wsUrl: string, key: string | null): Client {
  return createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: key === null ? {} : { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    lazy: true,
  });
}

/** A graphql-ws subscription's data, event by event; a result with errors, or a failed connection, rejects. */
export async function* subscription<T = Record<string, any>>(client: Client, query: string, variables: Record<string, unknown>): AsyncGenerator<T, void, undefined> {
  try {
    for await (const result of client.iterate<T>({ query, variables })) {
      if (result.errors?.length) throw Object.assign(new Error(`subscription errors: ${JSON.stringify(result.errors)}`), { errors: result.errors });
      yield result.data as T;
    }
  } catch (error) {
    // graphql-ws rejects with what the socket said (a close event with its code), not an Error.
    throw error instanceof Error ? error : Object.assign(new Error(`subscription failed: ${JSON.stringify(error)}`), { raw: error });
  }
}

/** Is this turnUpdated event the last one? A SNAPSHOT of a finished turn is final too. */
export function isFinalTurnEvent(event: { kind: string; turn?: { status?: string } } | undefined): boolean {
  const FINAL = ["COMPLETED", "FAILED", "CANCELLED"];
  return event !== undefined && (FINAL.includes(event.kind) || (event.kind === "SNAPSHOT" && FINAL.includes(event.turn?.status ?? "")));
}

export const CREATE_CONVERSATION = `mutation($title: String) { createConversation(input: { title: $title }) { id title } }`;
export const SEND_MESSAGE = `mutation($input: SendMessageInput!) {
  sendMessage(input: $input) {
    userTurn { id position role status text kind }
    assistantTurn { id position role status kind seed queuePosition }
  }
}`;
