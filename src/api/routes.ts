/**
 * The HTTP routes of the one port: CORS (cors.ts), /graphql (the GraphQL adapter), the OpenAI
 * /v1 routes, health, readiness, metrics, image upload and download, and the web client. Every
 * request is counted by route for /metrics; errors answer in the route's shape (OpenAI's under
 * /v1, ours elsewhere).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, ErrorCode } from "../errors.js";
import type { Services } from "../turns/service.js";
import { authorizeMetrics } from "./auth.js";
import { applyCors } from "./cors.js";
import { authenticateRequest, handleDownload, handleUpload, sendError, sendJson } from "./http.js";
import type { Metrics } from "./metrics.js";
import { handleOpenAI, isOpenAIPath, openAIRoute, sendOpenAIError } from "./openai/index.js";
import { isWebPath, serveWeb } from "./web.js";

export interface RouteDeps {
  services: Services;
  metrics: Metrics;
  graphql: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** Readiness beyond the database (the engine, once loaded). */
  ready?: () => boolean;
  log: (line: string) => void;
}

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

/** Answers one request; returns the route's metrics label. */
async function route(deps: RouteDeps, req: IncomingMessage, res: ServerResponse): Promise<string> {
  const { services, metrics } = deps;
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  if (applyCors(services.config.cors, req, res)) return "options";
  if (path === "/graphql") {
    await deps.graphql(req, res);
    return "graphql";
  }
  if (isOpenAIPath(path)) return handleOpenAI(req, res, services, path);
  if (path === "/healthz") {
    sendJson(res, 200, { status: "ok" });
    return "healthz";
  }
  if (path === "/readyz") {
    const db = await services.ping();
    const engine = deps.ready?.() ?? true;
    // Scaled out: Redis must answer and a worker be alive, or a turn sent now would wait QUEUED.
    const stats = services.queueStats ?? null;
    const redis = stats === null ? null : await stats.reachable();
    const workers = stats === null || redis !== true ? null : ((await stats.workers())?.length ?? null);
    const ready = db && engine && (stats === null || (redis === true && workers !== null && workers > 0));
    const queue = stats === null ? {} : { redis, workers, ...(workers === 0 ? { reason: "no engine worker is alive: turns wait QUEUED until one starts (npx unipic worker)" } : {}) };
    sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", database: db, engine: engine ? "ready" : "not ready", ...queue });
    return "readyz";
  }
  if (path === "/metrics") {
    await authorizeMetrics(req, services);
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
  // The built web client (dist/web): /, /graphiql and /assets/*; 503 when not built.
  if ((req.method === "GET" || req.method === "HEAD") && isWebPath(path) && (await serveWeb(req, res, path))) return "web";
  throw new AppError(ErrorCode.NOT_FOUND, `no route for ${req.method} ${path}`);
}

/** The node:http request listener: routes, counts, and answers errors. */
export function requestListener(deps: RouteDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, services, log } = deps;
  return (req, res) => {
    let routeName = routeOf(req.url);
    route(deps, req, res)
      .then((name) => (routeName = name))
      .catch((error: unknown) => {
        // The /v1 routes answer in OpenAI's error shape, so OpenAI SDKs raise their own classes.
        const openai = isOpenAIPath((req.url ?? "/").split("?")[0]!);
        const code = openai ? sendOpenAIError(res, error, services.config.production) : sendError(res, error, services.config.production);
        metrics.httpErrors.inc({ route: routeName, code });
        if (code === ErrorCode.INTERNAL) log(`error: ${(error as Error)?.stack ?? String(error)}`);
      })
      .finally(() => metrics.httpRequests.inc({ route: routeName, method: req.method ?? "?", status: String(res.statusCode) }));
  };
}
