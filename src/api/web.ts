/**
 * The web client's routes (server code, not bundled): serves the Vite build in dist/web for
 * routes.ts. `/` is the client, `/graphiql` GraphiQL, `/assets/*` the hashed files.
 * Only names directly inside dist/web/assets are served, so no path can climb out of it.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const WEB_ROOT = fileURLToPath(new URL("../../dist/web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
};

const PAGES: Record<string, string> = { "/": "index.html", "/index.html": "index.html", "/graphiql": "graphiql.html", "/graphiql/": "graphiql.html" };

// Pages may run only our own scripts and talk only to this origin (HTTP and WebSocket); images
// come as blob: object URLs and data: previews. GraphiQL's editor sets inline styles.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** True for the paths this module answers (GET/HEAD); the rest stay the API's 404. */
export function isWebPath(urlPath: string): boolean {
  return urlPath in PAGES || urlPath.startsWith("/assets/");
}

/** The file for a URL path inside `root`, or null. `urlPath` is still percent-encoded. */
function resolveFile(root: string, urlPath: string): string | null {
  const page = PAGES[urlPath];
  if (page !== undefined) return path.join(root, page);
  let name: string;
  try {
    name = decodeURIComponent(urlPath.slice("/assets/".length));
  } catch {
    return null;
  }
  // One plain file name: no separators, no dot-files (".", ".."), no NUL.
  if (name === "" || /[/\\\0]/.test(name) || name.startsWith(".")) return null;
  const assets = path.join(root, "assets");
  const file = path.resolve(assets, name);
  return path.dirname(file) === assets ? file : null;
}

/**
 * Answers a GET/HEAD for a web path. Returns false when there is no such file (the caller
 * answers 404); 503 with instructions when the client was never built.
 */
export async function serveWeb(req: IncomingMessage, res: ServerResponse, urlPath: string, root: string = WEB_ROOT): Promise<boolean> {
  const built = await stat(path.join(root, "index.html")).then((s) => s.isFile(), () => false);
  if (!built) {
    const body = "The web client is not built. Run `npm run build:web` (npm start does this for you), then reload.\n";
    res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "no-store", "retry-after": "10" });
    res.end(req.method === "HEAD" ? undefined : body);
    return true;
  }
  const file = resolveFile(root, urlPath);
  if (file === null) return false;
  const info = await stat(file).catch(() => null);
  if (info === null || !info.isFile()) return false;
  const isPage = file.endsWith(".html");
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    "content-type": TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
    "x-content-type-options": "nosniff",
    etag,
    // Hashed asset names change with their content: cache for a year. Pages: always revalidate.
    "cache-control": isPage ? "no-cache" : "public, max-age=31536000, immutable",
  };
  if (isPage) {
    headers["content-security-policy"] = CSP;
    headers["referrer-policy"] = "no-referrer";
  }
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, headers);
    res.end();
    return true;
  }
  headers["content-length"] = info.size;
  res.writeHead(200, headers);
  if (req.method === "HEAD") {
    res.end();
    return true;
  }
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(file);
    stream.on("error", reject);
    res.on("close", resolve);
    stream.pipe(res);
  });
  return true;
}
