/**
 * The one place that puts the transports on one node:http server and port: GraphQL over HTTP
 * (graphql-http.ts, Apollo), GraphQL over WebSocket (ws.ts, graphql-ws) and the plain routes
 * (routes.ts). Knows nothing of how the store or the engine are made: it is handed Services.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Services } from "../turns/service.js";
import { startGraphQLHttp } from "./graphql-http.js";
import { connectionFields } from "./limits.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { requestListener } from "./routes.js";
import { createSchema, type GraphQLSetup } from "./schema.js";
import { startGraphQLWebSocket } from "./ws.js";

export interface ServerOptions {
  services: Services;
  /** Readiness beyond the database (the engine, once loaded). */
  ready?: () => boolean;
  log?: (line: string) => void;
  /** Collect process metrics (off in tests that start many servers). */
  defaultMetrics?: boolean;
}

export interface RunningServer {
  url: string;
  wsUrl: string;
  port: number;
  http: Server;
  metrics: Metrics;
  /** Stops accepting, drains HTTP, closes sockets with 1001. Does not close the database. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions, port: number, host: string): Promise<RunningServer> {
  const { services } = options;
  const log = options.log ?? (() => undefined);
  const schema = await createSchema();
  const graphql: GraphQLSetup = {
    schema,
    connections: connectionFields(schema),
    errors: { production: services.config.production, log: (e: unknown) => log(`error: ${(e as Error)?.stack ?? String(e)}`) },
  };
  const metrics = createMetrics(services.store, options.defaultMetrics ?? true, services.quotas, services.queueStats, { turn: services.turnHub, conversation: services.conversationHub });
  const httpServer = createServer();
  const ws = startGraphQLWebSocket(httpServer, graphql, services, metrics);
  const http = await startGraphQLHttp(httpServer, graphql, services, ws.dispose);
  httpServer.on("request", requestListener({ services, metrics, graphql: http.handle, ready: options.ready, log }));

  await new Promise<void>((resolve, reject) => {
    httpServer.once("error", reject);
    httpServer.listen(port, host, () => resolve());
  });
  const address = httpServer.address() as AddressInfo;
  const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    wsUrl: `ws://${shownHost}:${address.port}/graphql`,
    port: address.port,
    http: httpServer,
    metrics,
    close() {
      closing ??= (async () => {
        services.turnHub.closeAll();
        services.conversationHub.closeAll();
        ws.goodbye();
        await http.stop(); // drains HTTP, then disposes graphql-ws
        ws.close();
      })();
      return closing;
    },
  };
}
