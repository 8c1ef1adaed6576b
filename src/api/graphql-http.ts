/**
 * GraphQL over HTTP: Apollo Server behind node:http. The body is read here (with our size limit
 * and our error for unparseable JSON), the bearer key becomes the context, and Apollo's answer,
 * complete or incremental, is written back.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { ApolloServer, HeaderMap } from "@apollo/server";
import { ApolloServerPluginLandingPageDisabled } from "@apollo/server/plugin/disabled";
import { ApolloServerPluginDrainHttpServer } from "@apollo/server/plugin/drainHttpServer";
import { AppError, ErrorCode } from "../errors.js";
import type { Services } from "../turns/service.js";
import type { Context } from "./context.js";
import { formatError, toGraphQLError } from "./errors.js";
import { authenticateRequest, readBody, sendJson } from "./http.js";
import { disposeOnDrainPlugin, operationLimitsPlugin } from "./plugins.js";
import type { GraphQLSetup } from "./schema.js";

const GRAPHQL_BODY_LIMIT = 1024 * 1024;

export interface GraphQLHttp {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Drains HTTP, then runs the drain hooks (the WebSocket transport's dispose). */
  stop(): Promise<void>;
}

export async function startGraphQLHttp(
  httpServer: Server,
  graphql: GraphQLSetup,
  services: Services,
  onDrain: () => Promise<void>,
): Promise<GraphQLHttp> {
  const apollo = new ApolloServer<Context>({
    schema: graphql.schema,
    // Apollo's CSRF prevention: a request must be one a browser preflights (a non-simple
    // content type, or one of these headers). Authorization is such a header, and every request
    // needs it, so plain GET clients with a key still work; a cross-site form or <img> never does.
    csrfPrevention: { requestHeaders: ["authorization", "x-apollo-operation-name", "apollo-require-preflight"] },
    introspection: true,
    includeStacktraceInErrorResponses: false,
    formatError: (formatted, error) => formatError(formatted, error, graphql.errors),
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      operationLimitsPlugin(services.config.limits, graphql.connections),
      disposeOnDrainPlugin(onDrain),
    ],
  });
  await apollo.start();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
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

  return { handle, stop: () => apollo.stop() };
}
