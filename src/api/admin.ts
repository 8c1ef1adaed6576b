/**
 * A local admin socket (a Unix socket in the data dir, mode 0600) through which the `unipic`
 * CLI manages users while the server runs: embedded PGlite can be opened by one process only.
 * Whoever can open the socket can read the data dir anyway, so file permissions are the guard.
 * Protocol: one JSON request line, one JSON response line.
 */
import { chmod, mkdir, rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { AppError, ErrorCode } from "../errors.js";
import type { Store } from "../store/index.js";
import { validateTitle } from "../turns/validate.js";

export interface AdminSocket {
  path: string;
  close(): Promise<void>;
}

export type AdminRequest = { op: "users.add"; name: string } | { op: "keys.revoke"; key: string };

export function adminSocketPath(dataDir: string): string {
  return path.join(dataDir, "admin.sock");
}

/** Runs one admin request against the store (also used by the CLI when no server runs). */
export async function runAdminRequest(store: Store, request: AdminRequest): Promise<Record<string, unknown>> {
  switch (request?.op) {
    case "users.add": {
      const { user, apiKey } = await store.users.create(validateTitle(String(request.name ?? ""), "name"));
      return { user: { id: user.id, name: user.name }, apiKey };
    }
    case "keys.revoke":
      return { revoked: await store.users.revokeKey(String(request.key ?? "")) };
    default:
      throw AppError.badInput("op", "users.add or keys.revoke", (request as { op?: unknown })?.op);
  }
}

export async function startAdminSocket(dataDir: string, store: Store, log: (line: string) => void): Promise<AdminSocket> {
  const socketPath = adminSocketPath(dataDir);
  await mkdir(dataDir, { recursive: true });
  await rm(socketPath, { force: true }); // a stale socket from a killed server
  const server = net.createServer((conn) => {
    let buffer = "";
    conn.setEncoding("utf8");
    conn.on("data", (chunk: string) => {
      buffer += chunk;
      if (buffer.length > 64 * 1024) conn.destroy();
      const newline = buffer.indexOf("\n");
      if (newline < 0) return;
      const line = buffer.slice(0, newline);
      void (async () => {
        try {
          const result = await runAdminRequest(store, JSON.parse(line) as AdminRequest);
          conn.end(`${JSON.stringify({ ok: true, ...result })}\n`);
        } catch (error) {
          const code = error instanceof AppError ? error.code : ErrorCode.INTERNAL;
          if (code === ErrorCode.INTERNAL) log(`admin socket error: ${String(error)}`);
          conn.end(`${JSON.stringify({ ok: false, code, message: error instanceof Error ? error.message : String(error) })}\n`);
        }
      })();
    });
    conn.on("error", () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  await chmod(socketPath, 0o600);
  return {
    path: socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }).then(() => rm(socketPath, { force: true })),
  };
}
