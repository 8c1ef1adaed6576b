/**
 * The subscribers of the preview-latency benchmark, in their own process (as real clients are),
 * so their JSON parsing does not count as server time. Usage (spawned by bench.ts):
 *   bench-clients.ts WS_URL KEY TURN_GLOBAL_ID COUNT
 * Prints `ready` once all are subscribed, then one JSON line per STEP received:
 * {"step": n, "at": epoch-ms}, and `done` when every client saw the turn finish.
 */
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, key, turnId, countText] = process.argv.slice(2);
const count = Number(countText);
const query = `subscription($id: ID!) { turnUpdated(id: $id) { kind step preview { step dataUrl } turn { status } } }`;
let subscribed = 0;

const clients = Array.from({ length: count }, () => createClient({ url: url!, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${key}` }, retryAttempts: 0 }));
await Promise.all(
  clients.map(
    (client) =>
      new Promise<void>((resolve, reject) => {
        client.subscribe<{ turnUpdated: { kind: string; step: number | null; turn: { status: string } } }>(
          { query, variables: { id: turnId } },
          {
            next: (r) => {
              const e = r.data?.turnUpdated;
              if (e?.kind === "SNAPSHOT" && ++subscribed === count) process.stdout.write("ready\n");
              if (e?.kind === "STEP" && e.step !== null) process.stdout.write(`${JSON.stringify({ step: e.step, at: performance.timeOrigin + performance.now() })}\n`);
            },
            error: reject,
            complete: resolve,
          },
        );
      }),
  ),
);
process.stdout.write("done\n");
await Promise.all(clients.map((c) => c.dispose()));
process.exit(0);
