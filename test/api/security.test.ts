/**
 * The security settings at the edge (docs/security.md): CORS same-origin by default, a list or
 * `*` by CORS_ORIGINS (the OpenAI SDK's x-stainless-* headers still allowed); WebSocket upgrades
 * checked by Origin the same way, and no message over 1 MiB; Apollo's CSRF prevention on, with
 * the bearer key counting as a preflighted header; /metrics for admins or METRICS_TOKEN unless
 * METRICS_ACCESS=open.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { gql, startTestApp, type TestApp } from "../helpers/app.js";

const APP = "https://app.example.com";
const EVIL = "https://evil.example.net";
const TOKEN = "scrape-me-0123456789abcdef";

let plain: TestApp; // defaults: same-origin, metrics for admins
let listed: TestApp; // CORS_ORIGINS=APP, METRICS_TOKEN
let open: TestApp; // CORS_ORIGINS=*, METRICS_ACCESS=open
beforeAll(async () => {
  [plain, listed, open] = await Promise.all([
    startTestApp(),
    startTestApp({ CORS_ORIGINS: `${APP},http://localhost:5173`, METRICS_TOKEN: TOKEN }),
    startTestApp({ CORS_ORIGINS: "*", METRICS_ACCESS: "open" }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain, listed, open].map((t) => t?.close()));
});

const VIEWER = JSON.stringify({ query: "{ viewer { name } }" });

function post(t: TestApp, headers: Record<string, string>, body = VIEWER): Promise<Response> {
  return fetch(`${t.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${t.adminKey}`, ...headers }, body });
}

function preflight(t: TestApp, origin: string, path = "/v1/images/generations"): Promise<Response> {
  return fetch(`${t.url}${path}`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, x-stainless-os, x-stainless-retry-count" },
  });
}

/** Opens a graphql-ws socket with this Origin (none: as a server-side client); "open" or the HTTP status that refused it. */
function wsOpens(t: TestApp, origin?: string): Promise<"open" | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(t.wsUrl, "graphql-transport-ws", origin === undefined ? {} : { origin });
    socket.once("open", () => {
      socket.close();
      resolve("open");
    });
    socket.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
    socket.once("error", reject);
  });
}

describe("CORS", () => {
  it("is same-origin by default: no CORS headers for another origin, and its preflight allows nothing", async () => {
    const res = await post(plain, { origin: EVIL });
    expect(res.status).toBe(200); // served (a server-side client may send any Origin) ...
    expect(res.headers.get("access-control-allow-origin")).toBeNull(); // ... but no browser page may read it
    const pre = await preflight(plain, EVIL);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect(pre.headers.get("access-control-allow-headers")).toBeNull();
    // The server's own pages need no CORS at all.
    expect((await post(plain, { origin: plain.url })).status).toBe(200);
  });

  it("CORS_ORIGINS lists origins: those get their own origin back, any request headers (OpenAI's SDKs), and the retry headers exposed", async () => {
    const pre = await preflight(listed, APP);
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(APP);
    expect(pre.headers.get("access-control-allow-headers")).toBe("authorization, content-type, x-stainless-os, x-stainless-retry-count");
    expect(pre.headers.get("vary")).toMatch(/origin/i);
    const res = await post(listed, { origin: APP });
    expect(res.headers.get("access-control-allow-origin")).toBe(APP);
    expect(res.headers.get("access-control-expose-headers")).toContain("retry-after");
    expect(res.headers.get("access-control-expose-headers")).toContain("x-unipic-conversation-id");
    expect((await post(listed, { origin: EVIL })).headers.get("access-control-allow-origin")).toBeNull();
    expect((await preflight(listed, EVIL)).headers.get("access-control-allow-origin")).toBeNull();
  });

  it("CORS_ORIGINS=* lets any origin (every request still needs its key)", async () => {
    expect((await preflight(open, EVIL)).headers.get("access-control-allow-origin")).toBe("*");
    expect((await post(open, { origin: EVIL })).headers.get("access-control-allow-origin")).toBe("*");
    const anonymous = await fetch(`${open.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", origin: EVIL }, body: VIEWER });
    expect(anonymous.status).toBe(401);
  });
});

describe("WebSocket", () => {
  it("refuses an upgrade from a page of another origin (CORS does not cover WebSockets), under the same rule", async () => {
    expect(await wsOpens(plain)).toBe("open");
    expect(await wsOpens(plain, plain.url)).toBe("open");
    expect(await wsOpens(plain, EVIL)).toBe(403);
    expect(await wsOpens(listed, APP)).toBe("open");
    expect(await wsOpens(listed, EVIL)).toBe(403);
    expect(await wsOpens(open, EVIL)).toBe("open");
  });

  it("closes a socket that sends a message over 1 MiB (1009), before authenticating anything", async () => {
    const socket = new WebSocket(plain.wsUrl, "graphql-transport-ws");
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
    socket.send(JSON.stringify({ type: "connection_init", payload: { pad: "x".repeat(1024 * 1024 + 1) } }));
    expect(await closed).toBe(1009);
  });
});

describe("CSRF prevention (Apollo's)", () => {
  it("refuses requests a browser would send cross-site without a preflight; the bearer key or a JSON body lets a request through", async () => {
    // A cross-site form can post text/plain or form data, and carries no Authorization header.
    const form = await fetch(`${plain.url}/graphql`, { method: "POST", headers: { "content-type": "text/plain" }, body: VIEWER });
    expect(form.status).toBe(400);
    expect(await form.text()).toMatch(/Cross-Site Request Forgery/);
    const get = await fetch(`${plain.url}/graphql?query=${encodeURIComponent("{ viewer { name } }")}`);
    expect(get.status).toBe(400);
    // With the key (a header that needs a preflight) GET works, as for any GraphQL-over-HTTP client.
    const authed = await fetch(`${plain.url}/graphql?query=${encodeURIComponent("{ viewer { name } }")}`, { headers: { authorization: `Bearer ${plain.adminKey}` } });
    expect(authed.status).toBe(200);
    expect(((await authed.json()) as any).data.viewer.name).toMatch(/^admin/);
    // JSON needs a preflight too: without a key it is a plain 401.
    expect((await gql(plain.url, null, "{ viewer { name } }")).status).toBe(401);
  });
});

describe("/metrics access", () => {
  const scrape = (t: TestApp, key?: string) => fetch(`${t.url}/metrics`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });

  it("by default: an admin's key; without one 401, with a user's key 403", async () => {
    expect((await scrape(plain)).status).toBe(401);
    expect((await scrape(plain, await plain.newUser())).status).toBe(403);
    const ok = await scrape(plain, plain.adminKey);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("unipic_http_requests_total");
  });

  it("METRICS_TOKEN lets a scraper in with the token alone; a wrong one is 401", async () => {
    expect((await scrape(listed, TOKEN)).status).toBe(200);
    expect((await scrape(listed, `${TOKEN}x`)).status).toBe(401);
    expect((await scrape(listed, TOKEN.slice(0, -1))).status).toBe(401);
    expect((await scrape(listed, listed.adminKey)).status).toBe(200);
  });

  it("METRICS_ACCESS=open: anyone", async () => {
    expect((await scrape(open)).status).toBe(200);
  });
});
