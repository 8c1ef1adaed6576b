import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, startTestApp, wsClient, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe("operations endpoints", () => {
  it("healthz and readyz", async () => {
    const health = await fetch(`${t.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", database: true });
  });

  it("metrics count requests, errors, subscriptions and turns by status", async () => {
    const { createConversation } = await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "metrics" });
    await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId: createConversation.id, text: "a green triangle" } });
    await fetch(`${t.url}/images/nope`, { headers: { authorization: `Bearer ${t.adminKey}` } });
    const client = wsClient(t.wsUrl, t.adminKey);
    let unsubscribe = (): void => undefined;
    // Scrape while one subscription is open (after its snapshot arrived).
    await new Promise<void>((resolve, reject) => {
      unsubscribe = client.subscribe(
        { query: `subscription($id: ID!) { conversationUpdated(id: $id) { kind } }`, variables: { id: createConversation.id } },
        { next: () => resolve(), error: reject, complete: () => undefined },
      );
    });
    const scrape = async (): Promise<string> => (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } })).text();
    const scraped = await scrape();
    unsubscribe();
    await client.dispose();
    // The hub lets go of the subscriber once the socket closes: nothing is left behind.
    const after = await waitFor("the conversation hub to drop the subscriber", scrape, (text) => /unipic_hub_subscribers\{hub="conversation"\} 0/.test(text));
    expect(after).toMatch(/unipic_hub_topics\{hub="conversation"\} 0/);
    expect(scraped).toMatch(/unipic_http_requests_total\{route="graphql",method="POST",status="200"\} \d+/);
    expect(scraped).toMatch(/unipic_http_errors_total\{route="images_download",code="BAD_INPUT"\} 1/);
    expect(scraped).toMatch(/unipic_active_subscriptions 1/);
    expect(scraped).toMatch(/unipic_hub_subscribers\{hub="conversation"\} 1/);
    expect(scraped).toMatch(/unipic_hub_topics\{hub="conversation"\} 1/);
    expect(scraped).toMatch(/unipic_turns\{status="QUEUED"\} [1-9]/);
    expect(scraped).toMatch(/process_cpu_user_seconds_total/);
  });

  it("unknown routes are NOT_FOUND with a JSON error", async () => {
    const res = await fetch(`${t.url}/nowhere`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error.code).toBe("NOT_FOUND");
  });

  it("serves the web root", async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(await res.text()).toContain("UniPic Studio");
  });
});
