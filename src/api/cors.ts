/**
 * Which browser origins may use the API (CORS_ORIGINS). Same-origin by default: the server adds
 * no CORS headers, so a page of another site cannot read any answer. `*` lets any origin call the
 * API (every request needs the bearer key anyway, never a cookie); a list lets those origins.
 * WebSocket upgrades, which CORS does not cover, follow the same rule by their Origin header.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { CorsOrigins } from "../config.js";

/** Response headers a browser script may read (CORS hides the rest). */
const EXPOSED = "retry-after, retry-after-ms, x-unipic-conversation-id";

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value)?.split(",")[0]?.trim() || undefined;
}

/** Whether `origin` is this server as the browser reached it (its Host, or a proxy's forwarded host). */
function sameOrigin(req: IncomingMessage, origin: string): boolean {
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  return host === header(req, "host") || host === header(req, "x-forwarded-host");
}

/** Whether a request with this Origin header may be served to a browser script. */
export function originAllowed(cors: CorsOrigins, req: IncomingMessage): boolean {
  const origin = header(req, "origin");
  if (origin === undefined) return true; // not from a browser page (curl, SDKs, servers)
  if (cors.kind === "any") return true;
  if (cors.kind === "list" && cors.origins.includes(origin)) return true;
  return sameOrigin(req, origin);
}

/**
 * Adds the CORS headers for an allowed cross-origin request; answers a preflight (OPTIONS) and
 * returns true when it did.
 */
export function applyCors(cors: CorsOrigins, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = header(req, "origin");
  // Answers differ by Origin when a list decides: caches must keep them apart.
  if (cors.kind === "list") res.setHeader("vary", "Origin");
  const crossOrigin = origin !== undefined && !sameOrigin(req, origin);
  const allowed = crossOrigin && (cors.kind === "any" || (cors.kind === "list" && cors.origins.includes(origin)));
  if (allowed) {
    res.setHeader("access-control-allow-origin", cors.kind === "any" ? "*" : origin);
    res.setHeader("access-control-expose-headers", EXPOSED);
  }
  if (req.method !== "OPTIONS") return false;
  if (allowed) {
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, OPTIONS",
      // Whatever headers the client asks for (OpenAI's SDKs add x-stainless-*): nothing is
      // authorised by a header other than the bearer key, so allowing them grants nothing.
      "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "authorization, content-type, accept",
      "access-control-max-age": "86400",
    });
  } else {
    // No allow headers: the browser refuses the request it asked about.
    res.writeHead(204);
  }
  res.end();
  return true;
}
