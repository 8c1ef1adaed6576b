/**
 * GraphQL over WebSocket (graphql-ws, protocol graphql-transport-ws) on the HTTP server's
 * /graphql: the connection's key authenticates it (a wrong one closes it with 4403), operations
 * meet the same limits as over HTTP, identical subscriptions share one execution per event, and
 * errors are shown as over HTTP.
 */
import type { IncomingMessage, Server } from "node:http";
import { GraphQLError, parse, validate, type ExecutionArgs } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import { AppError, ErrorCode } from "../errors.js";
import type { UserRow } from "../store/index.js";
import type { Services } from "../turns/service.js";
import { authenticate } from "./auth.js";
import { originAllowed } from "./cors.js";
import type { Context } from "./context.js";
import { formatError, toGraphQLError } from "./errors.js";
import { enforceOperationLimits } from "./limits.js";
import type { Metrics } from "./metrics.js";
import type { GraphQLSetup } from "./schema.js";
import { sharedSubscribe } from "./shared-subscribe.js";

/** The largest WebSocket message accepted (as GraphQL over HTTP's body limit); a larger one closes the socket with 1009. */
export const WS_MAX_PAYLOAD = 1024 * 1024;

export interface GraphQLWebSocket {
  /** Closes every connection with 1001 (going away): the first step of a shutdown. */
  goodbye(): void;
  /** Stops serving operations (Apollo's drain calls it). */
  dispose(): Promise<void>;
  /** Stops accepting connections: the last step. */
  close(): void;
}

export function startGraphQLWebSocket(
  httpServer: Server,
  graphql: GraphQLSetup,
  services: Services,
  metrics: Metrics,
): GraphQLWebSocket {
  const { schema, connections, errors } = graphql;
  const wss = new WebSocketServer({
    server: httpServer,
    path: "/graphql",
    // A GraphQL message is small; ws would otherwise buffer frames of up to 100 MiB.
    maxPayload: WS_MAX_PAYLOAD,
    // CORS does not cover WebSockets: a browser page of another origin is refused here (403).
    verifyClient: ({ req }: { req: IncomingMessage }, answer: (ok: boolean, status?: number, reason?: string) => void) =>
      originAllowed(services.config.cors, req) ? answer(true) : answer(false, 403, "origin not allowed (CORS_ORIGINS)"),
  });
  const server = useServer<Record<string, unknown> | undefined, { user?: UserRow }>(
    {
      schema,
      context: (ctx): Context => ({ user: ctx.extra.user!, services }),
      // One execution per event for identical subscriptions (50 watchers of a turn share it).
      subscribe: sharedSubscribe((args) => (args.contextValue as Context).user.id),
      onConnect: async (ctx) => {
        try {
          ctx.extra.user = await authenticate(services.store, ctx.connectionParams?.authorization);
          return true;
        } catch (error) {
          // The key could not be checked (the database is restarting): not a wrong key. 1013 Try
          // Again Later, which graphql-ws clients retry, instead of 4403, which they do not.
          if (error instanceof AppError && error.code === ErrorCode.UNAVAILABLE) {
            ctx.extra.socket.close(1013, `${ErrorCode.UNAVAILABLE}: the database is unreachable; retry shortly`);
          }
          return false; // graphql-ws closes with 4403 Forbidden (a no-op once closed above)
        }
      },
      onSubscribe: (_ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (e) {
          return [e instanceof GraphQLError ? e : new GraphQLError(String(e))];
        }
        const invalid = validate(schema, document);
        if (invalid.length > 0) return invalid;
        try {
          enforceOperationLimits(document, payload.operationName, payload.variables, services.config.limits, connections);
        } catch (e) {
          return [toGraphQLError(e as AppError)];
        }
        metrics.activeSubscriptions.inc();
        return undefined;
      },
      onComplete: () => {
        metrics.activeSubscriptions.dec();
      },
      onNext: (_ctx, _id, _payload, _args: ExecutionArgs, result) => {
        if (!result.errors) return undefined;
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e, errors)) };
      },
      onError: (_ctx, _id, _payload, list) => list.map((e) => formatError(e.toJSON(), e, errors)),
    },
    wss,
  );
  return {
    goodbye() {
      for (const client of wss.clients) client.close(1001, "server shutting down");
    },
    dispose: async () => {
      await server.dispose();
    },
    close: () => wss.close(),
  };
}
