/**
 * The local PostgreSQL cluster behind DATABASE_URL, for fault tests that stop and start it
 * (pg_ctlcluster, Debian's postgresql-common). `restartableCluster()` says which cluster, or why
 * this machine has none a test may restart: DATABASE_URL unset, not on this machine, no cluster
 * listening on its port, or a user who may not run pg_ctlcluster for it.
 */
import { spawnSync } from "node:child_process";
import { userInfo } from "node:os";
import pg from "pg";
import { waitFor } from "./wait.js";

export interface LocalCluster {
  version: string;
  name: string;
  port: number;
  /** DATABASE_URL, for a client of the maintenance database. */
  url: string;
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "::1", "[::1]", ""]);

/** The cluster DATABASE_URL points at, or the reason no test may restart it. */
export function restartableCluster(env = process.env): LocalCluster | { skip: string } {
  const raw = env.DATABASE_URL;
  if (!raw) return { skip: "DATABASE_URL is not set (this test stops and starts a local PostgreSQL cluster)" };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { skip: "DATABASE_URL is not a URL" };
  }
  if (!LOCAL_HOSTS.has(url.hostname)) return { skip: `DATABASE_URL's host ${url.hostname} is not this machine; only a local cluster may be restarted` };
  const port = Number(url.port || 5432);
  const listed = spawnSync("pg_lsclusters", ["-h"], { encoding: "utf8" });
  if (listed.error !== undefined || listed.status !== 0) return { skip: "pg_lsclusters is not available (postgresql-common): cannot restart the cluster" };
  // "15 main 5432 online postgres /var/lib/postgresql/15/main /var/log/..."
  const row = listed.stdout
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((cols) => Number(cols[2]) === port);
  if (row === undefined) return { skip: `no cluster of this machine listens on port ${port} (pg_lsclusters)` };
  const [version, name, , status, owner] = row as [string, string, string, string, string];
  if (!status.startsWith("online")) return { skip: `cluster ${version}/${name} is ${status}, not online` };
  const me = userInfo().username;
  if (me !== "root" && me !== owner) return { skip: `user ${me} may not stop cluster ${version}/${name} (owned by ${owner})` };
  return { version, name, port, url: raw };
}

function ctl(cluster: LocalCluster, action: "stop" | "start"): void {
  // --skip-systemctl-redirect: act on the cluster directly, with or without systemd.
  const run = spawnSync("pg_ctlcluster", ["--skip-systemctl-redirect", cluster.version, cluster.name, action], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`pg_ctlcluster ${action} failed (${run.status}): ${run.stderr || run.stdout}`);
}

/** Whether the cluster accepts a query now. */
export async function accepting(cluster: LocalCluster): Promise<boolean> {
  const client = new pg.Client({ connectionString: cluster.url, connectionTimeoutMillis: 2000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Stops the cluster (fast mode: every connection is ended, as in a restart). */
export function stopCluster(cluster: LocalCluster): void {
  ctl(cluster, "stop");
}

/** Starts the cluster if it is not accepting queries, and waits until it does. */
export async function ensureRunning(cluster: LocalCluster): Promise<void> {
  if (await accepting(cluster)) return;
  try {
    ctl(cluster, "start");
  } catch (error) {
    // Already starting (pg_ctlcluster says so): the wait below is what matters.
    if (!/already running/i.test(String(error))) throw error;
  }
  await waitFor(`PostgreSQL ${cluster.version}/${cluster.name} to accept queries`, () => accepting(cluster));
}
