/**
 * The server's web routes: the built client at /, GraphiQL at /graphiql, hashed assets with
 * long caching, no way out of dist/web, and a clear 503 (not a crash) when nothing was built.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveWeb } from "../../src/api/web.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { ensureWebBuild, ROOT } from "../web/helpers.js";

/** GET with the path sent exactly as written (fetch would normalize "..", which hides what the server does). */
function rawGet(base: string, rawPath: string, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path: rawPath, method }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("web routes", () => {
  let t: TestApp;
  let assets: string[];

  beforeAll(async () => {
    ensureWebBuild();
    assets = await readdir(path.join(ROOT, "dist/web/assets"));
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it("serves the client at / and GraphiQL at /graphiql, revalidated, with a CSP", async () => {
    for (const [route, marker] of [["/", "<div id=\"app\">"], ["/graphiql", "<div id=\"graphiql\">"]] as const) {
      const res = await fetch(`${t.url}${route}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(res.headers.get("cache-control")).toBe("no-cache");
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
      const html = await res.text();
      expect(html).toContain(marker);
      // Only local, hashed scripts: nothing from a CDN.
      expect(html).not.toMatch(/src="https?:/);
      expect(html).toMatch(/src="\/assets\/[\w-]+\.js"/);
    }
  });

  it("serves hashed assets with their type and a year of caching; ETag revalidation works", async () => {
    const js = assets.find((f) => f.endsWith(".js"))!;
    const css = assets.find((f) => f.endsWith(".css"))!;
    const res = await fetch(`${t.url}/assets/${js}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(0);
    await res.arrayBuffer();
    const again = await fetch(`${t.url}/assets/${js}`, { headers: { "if-none-match": res.headers.get("etag")! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${t.url}/assets/${css}`)).headers.get("content-type")).toBe("text/css; charset=utf-8");
    const head = await rawGet(t.url, `/assets/${js}`, "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
  });

  it("answers 404 for unknown assets and other paths, as JSON like the rest of the API", async () => {
    const res = await fetch(`${t.url}/assets/nope-123.js`);
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe("NOT_FOUND");
    expect((await fetch(`${t.url}/favicon.ico`)).status).toBe(404);
    expect((await fetch(`${t.url}/`, { method: "POST" })).status).toBe(404);
  });

  it("cannot be walked out of dist/web", async () => {
    const attempts = [
      "/assets/../../package.json",
      "/assets/..%2f..%2fpackage.json",
      "/assets/%2e%2e/%2e%2e/package.json",
      "/assets/%2e%2e%2f%2e%2e%2fpackage.json",
      "/assets/..%5c..%5cpackage.json",
      "/assets/%2e%2e",
      "/assets/.",
      "/assets/",
      "/assets/%00",
      "/assets/%E0%A4%A",
      "/assets//etc/passwd",
      "/assets/%2fetc%2fpasswd",
      "/../package.json",
      "/graphiql/../../package.json",
      "/%2e%2e/package.json",
    ];
    for (const attempt of attempts) {
      const res = await rawGet(t.url, attempt);
      // The URL parser folds "%2e%2e" segments like "..": such a path may land on a page of ours, never outside.
      if (res.status === 200) expect(res.body, attempt).toMatch(/<div id="(app|graphiql)">/);
      expect(res.body, attempt).not.toContain('"name": "unipic-studio"');
      expect(res.body, attempt).not.toContain("root:");
    }
  });

  it("keeps the API routes working beside it", async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${t.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${t.adminKey}` }, body: JSON.stringify({ query: "{ viewer { name } }" }) });
    expect(res.status).toBe(200);
  });
});

describe("web routes without a build", () => {
  let server: Server;
  let base: string;
  let empty: string;

  beforeAll(async () => {
    empty = await mkdtemp(path.join(os.tmpdir(), "unipic-noweb-"));
    server = createServer((req, res) => {
      serveWeb(req, res, new URL(req.url!, "http://x").pathname, empty).then(
        (served) => served || res.writeHead(404).end(),
        () => res.writeHead(500).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(empty, { recursive: true, force: true });
  });

  it("answers 503 with the command to run, for the page and its assets alike", async () => {
    for (const route of ["/", "/graphiql", "/assets/main.js"]) {
      const res = await fetch(`${base}${route}`);
      expect(res.status).toBe(503);
      expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
      expect(await res.text()).toContain("npm run build:web");
    }
  });
});
