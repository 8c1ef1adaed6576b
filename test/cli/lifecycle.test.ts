/**
 * The server and `unipic users add` as a user runs them: first start prints the admin key once;
 * the CLI works with the server running (through its admin socket) and stopped (directly);
 * SIGTERM closes WebSockets with 1001 and exits 0; data survives a restart.
 */
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gql, gqlOk } from "../helpers/app.js";
import { freshLocation, type DataLocation } from "../helpers/db.js";
import { runCli, spawnServer } from "../helpers/process.js";

let where: DataLocation;
const env = (): Record<string, string> => where.env;

beforeAll(async () => {
  where = await freshLocation();
});
afterAll(async () => {
  await where?.cleanup();
});

function lastLine(text: string): string {
  return text.trim().split("\n").at(-1)!.trim();
}

describe("server process and CLI", () => {
  it("serves, adds users through a running server, shuts down gracefully, and keeps data", async () => {
    const first = await spawnServer(env());
    try {
      // A fresh database: the admin key is printed once, on a line of its own.
      expect(first.apiKey).toMatch(/^upk_[A-Za-z0-9]{40}$/);
      expect(first.stdout()).toContain("Authorization: Bearer");
      const added = await runCli(["users", "add", "dora"], env());
      expect(added.code).toBe(0);
      const doraKey = lastLine(added.stdout);
      expect(doraKey).toMatch(/^upk_[A-Za-z0-9]{40}$/);
      const viewer = await gqlOk(first.url, doraKey, `{ viewer { name isAdmin } }`);
      expect(viewer.viewer).toEqual({ name: "dora", isAdmin: false });
      await gqlOk(first.url, doraKey, `mutation { createConversation(input: { title: "kept" }) { id } }`);

      // SIGTERM: the open WebSocket is closed with 1001 (going away) and the process exits 0.
      const ws = new WebSocket(first.wsUrl, "graphql-transport-ws");
      await new Promise<void>((resolve, reject) => {
        ws.on("open", () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${doraKey}` } })));
        ws.on("message", () => resolve());
        ws.on("error", reject);
      });
      const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
      first.child.kill("SIGTERM");
      expect(await closed).toBe(1001);
      expect(await first.exited).toBe(0);

      // With no server running the CLI opens the database itself.
      const offline = await runCli(["users", "add", "eve"], env());
      expect(offline.code).toBe(0);
      const eveKey = lastLine(offline.stdout);
      expect(eveKey).toMatch(/^upk_/);

      const second = await spawnServer(env());
      try {
        expect(second.apiKey).toBeNull(); // printed only on the very first start
        const data = await gqlOk(second.url, doraKey, `{ conversations { nodes { title } } }`);
        expect(data.conversations.nodes.map((n: { title: string }) => n.title)).toEqual(["kept"]);
        expect((await gqlOk(second.url, eveKey, `{ viewer { name } }`)).viewer.name).toBe("eve");
        const revoked = await runCli(["keys", "revoke", eveKey], env());
        expect(revoked.stdout.trim()).toBe("revoked");
        expect((await gql(second.url, eveKey, `{ viewer { name } }`)).errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    } finally {
      if (first.child.exitCode === null) first.child.kill("SIGKILL");
    }
  }, 240_000);

  it("prints usage for an unknown command", async () => {
    const r = await runCli(["frobnicate"], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("usage: unipic");
  });

  it("answers --help on stdout with exit 0, for the whole tool and for one command", async () => {
    const all = await runCli(["--help"], env());
    expect(all.code).toBe(0);
    expect(all.stdout).toContain("usage: unipic <command>");
    const evalHelp = await runCli(["eval", "--help"], env());
    expect(evalHelp.code).toBe(0);
    expect(evalHelp.stdout).toContain("usage: unipic eval");
    expect(evalHelp.stdout).toContain("--questions N");
    expect(evalHelp.stdout).not.toContain("users add");
    expect((await runCli(["help", "generate"], env())).stdout).toContain("generate PROMPT -o out.png");
  });
});
