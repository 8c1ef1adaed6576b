/**
 * The one place that wires Apollo Server (HTTP) and graphql-ws (WebSocket) onto one node:http
 * server and port, beside the plain routes of ./http.ts. Knows nothing of how the store or the
 * engine are made: it is handed Services.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ApolloServer, HeaderMap, type ApolloServerPlugin } from "@apollo/server";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { GraphQLError, parse, validate, type ExecutionArgs } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import { AppError, ErrorCode } from "../errors.js";
import type { UserRow } from "../store/index.js";
import { authenticate } from "./auth.js";
import type { Context } from "./context.js";
import { sharedSubscribe } from "./shared-subscribe.js";
import { formatError, toGraphQLError } from "./errors.js";
import { authenticateRequest, handleDownload, handleUpload, readBody, sendError, sendJson } from "./http.js";
import { connectionFields, enforceOperationLimits } from "./limits.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createSchema } from "./schema.js";
import { isWebPath, serveWeb } from "../web/serve.js";
import { handleOpenAI, isOpenAIPath, openAIRoute, sendOpenAIError } from "./openai/index.js";
import type { Services } from "../turns/service.js";

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

const GRAPHQL_BODY_LIMIT = 1024 * 1024;

/** A low-cardinality label for metrics, known before routing (so failed requests are labelled too). */
function routeOf(rawUrl: string | undefined): string {
  const path = (rawUrl ?? "/").split("?")[0]!;
  if (path === "/graphql") return "graphql";
  if (path === "/images") return "images_upload";
  if (path.startsWith("/images/")) return "images_download";
  if (["/healthz", "/readyz", "/metrics"].includes(path)) return path.slice(1);
  if (isOpenAIPath(path)) return openAIRoute(path);
  return path === "/" ? "web" : "unknown";
}

export async function startServer(options: ServerOptions, port: number, host: string): Promise<RunningServer> {
  const { services } = options;
  const { config, store } = services;
  const log = options.log ?? (() => undefined);
  const schema = await createSchema();
  const connections = connectionFields(schema);
  const metrics = createMetrics(store, options.defaultMetrics ?? true);
  const httpServer = createServer();
  const wss = new WebSocketServer({ server: httpServer, path: "/graphql" });
  const errorOptions = { production: config.production, log: (e: unknown) => log(`error: ${(e as Error)?.stack ?? String(e)}`) };

  const wsServer = useServer<Record<string, unknown> | undefined, { user?: UserRow }>(
    {
      schema,
      context: (ctx): Context => ({ user: ctx.extra.user!, services }),
      // One execution per event for identical subscriptions (50 watchers of a turn share it).
      subscribe: sharedSubscribe((args) => (args.contextValue as Context).user.id),
      onConnect: async (ctx) => {
        try {
          ctx.extra.user = await authenticate(store, ctx.connectionParams?.authorization);
          return true;
        } catch {
          return false; // graphql-ws closes with 4403 Forbidden
        }
      },
      onSubscribe: (_ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (e) {
          return [e instanceof GraphQLError ? e : new GraphQLError(String(e))];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        try {
          enforceOperationLimits(document, payload.operationName, payload.variables, config.limits, connections);
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
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e, errorOptions)) };
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => formatError(e.toJSON(), e, errorOptions)),
    },
    wss,
  );

  const limitsPlugin: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operationName, request }) {
          try {
            enforceOperationLimits(document, operationName, request.variables, config.limits, connections);
          } catch (e) {
            throw e instanceof AppError ? toGraphQLError(e) : e;
          }
        },
      };
    },
  };

  const apollo = new ApolloServer<Context>({
    schema,
    // Authentication is a bearer header, never a cookie, so a cross-site form cannot act as a
    // user: Apollo's CSRF preflight requirement would only break plain GET clients.
    csrfPrevention: false,
    introspection: true,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) => formatError(formatted, error, errorOptions),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      limitsPlugin,
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await wsServer.dispose();
            },
          };
        },
      },
    ],
  });
  await apollo.start();

  async function handleGraphQL(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    let body: unknown = undefined;
    if (req.method === "POST") {
      const text = (await readBody(req, GRAPHQL_BODY_LIMIT)).toString("utf8");
      const type = headers.get("content-type") ?? "";
      if (type.includes("json")) {
        try {
          body = JSON.parse(text);
        } catch {
          sendJson(res, 400, { errors: [{ message: "body: expected JSON, got unparseable text", extensions: { code: ErrorCode.BAD_INPUT } }] });
          return;
        }
      } else {
        body = text;
      }
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? "GET", headers, search: url.search, body },
      context: async () => {
        try {
          return { user: await authenticateRequest(req, services), services };
        } catch (e) {
          throw e instanceof AppError ? toGraphQLError(e) : e;
        }
      },
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === "complete") {
      res.end(response.body.string);
    } else {
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<string> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    // Bearer auth only (no cookies), so any origin may call the API from a browser.
    res.setHeader("access-control-allow-origin", "*");
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        "access-control-allow-methods": "GET, POST, OPTIONS",
        // Whatever headers the client asks for (OpenAI's SDKs add x-stainless-*): nothing is
        // authorised by a header other than the bearer key, so echoing them grants nothing.
        "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "authorization, content-type, accept",
        "access-control-max-age": "86400",
      });
      res.end();
      return "options";
    }
    if (path === "/graphql") {
      await handleGraphQL(req, res);
      return "graphql";
    }
    if (isOpenAIPath(path)) return handleOpenAI(req, res, services, path);
    if (path === "/healthz") {
      sendJson(res, 200, { status: "ok" });
      return "healthz";
    }
    if (path === "/readyz") {
      const db = await services.ping();
      const engine = options.ready?.() ?? true;
      sendJson(res, db && engine ? 200 : 503, { status: db && engine ? "ready" : "not ready", database: db, engine: engine ? "ready" : "not ready" });
      return "readyz";
    }
    if (path === "/metrics") {
      res.writeHead(200, { "content-type": metrics.registry.contentType });
      res.end(await metrics.registry.metrics());
      return "metrics";
    }
    if (path === "/images" && req.method === "POST") {
      await handleUpload(req, res, services, await authenticateRequest(req, services));
      return "images_upload";
    }
    if (path.startsWith("/images/") && (req.method === "GET" || req.method === "HEAD")) {
      const user = await authenticateRequest(req, services);
      await handleDownload(req, res, services, user, decodeURIComponent(path.slice("/images/".length)));
      return "images_download";
    }
    if ((req.method === "GET" || req.method === "HEAD") && isWebPath(path)) {
      // The built web client (dist/web): /, /graphiql and /assets/*; 503 when not built.
      if (await serveWeb(req, res, path)) return "web";
      throw new AppError(ErrorCode.NOT_FOUND, `no route for ${req.method} ${path}`);
    }
    throw new AppError(ErrorCode.NOT_FOUND, `no route for ${req.method} ${path}`);
  }

  httpServer.on("request", (req: IncomingMessage, res: ServerResponse) => {
    let routeName = routeOf(req.url);
    route(req, res)
      .then((name) => (routeName = name))
      .catch((error: unknown) => {
        // The /v1 routes answer in OpenAI's error shape, so OpenAI SDKs raise their own classes.
        const openai = isOpenAIPath((req.url ?? "/").split("?")[0]!);
        const code = openai ? sendOpenAIError(res, error, config.production) : sendError(res, error, config.production);
        metrics.httpErrors.inc({ route: routeName, code });
        if (code === ErrorCode.INTERNAL) log(`error: ${(error as Error)?.stack ?? String(error)}`);
      })
      .finally(() => metrics.httpRequests.inc({ route: routeName, method: req.method ?? "?", status: String(res.statusCode) }));
  });

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
        for (const client of wss.clients) client.close(1001, "server shutting down");
        await apollo.stop(); // drains HTTP, then disposes graphql-ws
        wss.close();
      })();
      return closing;
    },
  };
}
