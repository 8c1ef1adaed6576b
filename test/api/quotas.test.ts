/**
 * Per-user quotas and rate limits at the API (USER_TURNS_PER_MINUTE, USER_QUEUED_TURNS,
 * USER_STORED_BYTES): GraphQL over HTTP and over WebSocket, POST /images, and the OpenAI routes
 * with the official SDK; admins exempt; refusals counted in /metrics. And the queue's fairness:
 * a user with many turns waiting does not hold back another's (priority, then per-user round
 * robin), on the real engine.
 */
import OpenAI, { RateLimitError } from "openai";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseGlobalId } from "../../src/api/ids.js";
import { DEFAULT_LIMITS } from "../../src/config.js";
import { normalizeUpload } from "../../src/images/index.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gql, gqlOk, startTestApp, wsClient, type GqlResult, type TestApp } from "../helpers/app.js";
import type { Client } from "graphql-ws";
import { WAIT_MS, waitFor } from "../helpers/wait.js";

const CANCEL = `mutation($id: ID!) { cancelTurn(id: $id) { status } }`;

async function png(r: number, g: number, b: number, size = 48): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await sharp({ create: { width: size, height: size, channels: 3, background: { r, g, b } } }).png().toBuffer());
}

/** One operation over graphql-ws: its result, errors included. */
async function wsOnce(client: Client, query: string, variables: Record<string, unknown>): Promise<GqlResult> {
  for await (const result of client.iterate({ query, variables })) return result as GqlResult;
  throw new Error("no result");
}

/** Sends a message over HTTP or WebSocket; returns the result as it came. */
type Send = (text: string, extra?: Record<string, unknown>) => Promise<GqlResult>;

describe("quotas and rate limits, GraphQL and POST /images (ENGINE=off: turns stay QUEUED)", () => {
  let t: TestApp;
  let imageBytes: number;
  const red = png(220, 30, 30);
  const blue = png(30, 30, 220);

  beforeAll(async () => {
    // The allowance is exactly one normalised upload: the first fits, a second does not.
    imageBytes = (await normalizeUpload(await red, DEFAULT_LIMITS)).bytes.byteLength;
    t = await startTestApp({ USER_TURNS_PER_MINUTE: "3", USER_QUEUED_TURNS: "2", USER_STORED_BYTES: String(imageBytes) });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Turns per minute and queued turns, the same through either transport. */
  async function exerciseTurnLimits(send: Send, cancel: (id: string) => Promise<unknown>): Promise<void> {
    const first = await send("a red circle");
    const second = await send("a blue square");
    expect(first.errors ?? second.errors).toBeUndefined();
    // Two waiting: the third is refused until one finishes (here: is cancelled).
    const queued = await send("a green triangle");
    expect(queued.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", retryAfterMs: 1000, expected: expect.stringContaining("USER_QUEUED_TURNS") });
    expect(queued.errors?.[0]?.message).toMatch(/at most 2 model replies waiting or running/);
    await cancel(first.data!.sendMessage.assistantTurn.id);
    expect((await send("a green triangle")).errors).toBeUndefined();
    // Three started this minute: the fourth waits for the first to leave the window.
    await cancel(second.data!.sendMessage.assistantTurn.id);
    const fast = await send("a yellow circle");
    const ext = fast.errors?.[0]?.extensions;
    expect(ext).toMatchObject({ code: "RATE_LIMITED", expected: expect.stringContaining("USER_TURNS_PER_MINUTE") });
    expect(ext!.retryAfterMs).toBeGreaterThan(0);
    expect(ext!.retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(fast.data).toBeNull();
  }

  it("over HTTP: turns per minute and queued turns at once are RATE_LIMITED with retryAfterMs; nothing is stored", async () => {
    const key = await t.newUser("alice");
    const conversationId = (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: "limits" })).createConversation.id;
    await exerciseTurnLimits(
      (text) => gql(t.url, key, SEND_MESSAGE, { input: { conversationId, text } }),
      (id) => gqlOk(t.url, key, CANCEL, { id }),
    );
    // The refused messages left no turns: three messages, three replies.
    const turns = await gqlOk(t.url, key, `query($id: ID!) { conversation(id: $id) { turns(first: 50) { nodes { role text } } } }`, { id: conversationId });
    expect(turns.conversation.turns.nodes.filter((n: { role: string }) => n.role === "USER").map((n: { text: string }) => n.text)).toEqual(["a red circle", "a blue square", "a green triangle"]);
  });

  it("over WebSocket: the same limits, the same codes", async () => {
    const key = await t.newUser("bob");
    const client = wsClient(t.wsUrl, key);
    try {
      const conversationId = (await wsOnce(client, CREATE_CONVERSATION, { title: "ws limits" })).data!.createConversation.id;
      await exerciseTurnLimits(
        (text) => wsOnce(client, SEND_MESSAGE, { input: { conversationId, text } }),
        async (id) => expect((await wsOnce(client, CANCEL, { id })).errors).toBeUndefined(),
      );
    } finally {
      await client.dispose();
    }
  });

  it("admins are exempt", async () => {
    const conversationId = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "admin" })).createConversation.id;
    for (let i = 0; i < 6; i++) await gqlOk(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId, text: `circle ${i}` } });
    const upload = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "image/png" }, body: await blue });
    const other = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "image/png" }, body: await red });
    expect([upload.status, other.status]).toEqual([201, 201]);
  });

  it("stored bytes: uploads past the allowance and new images are QUOTA_EXCEEDED (retryAfterMs null); questions still pass", async () => {
    const key = await t.newUser("carol");
    const post = (body: Uint8Array<ArrayBuffer>) => fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "image/png" }, body });
    const first = await post(await red);
    expect(first.status).toBe(201);
    const image = (await first.json()) as { id: string };
    const second = await post(await blue);
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBeNull(); // waiting does not help
    expect(((await second.json()) as any).error).toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: null, expected: expect.stringContaining("USER_STORED_BYTES") });
    expect((await post(await red)).status).toBe(201); // held already: counted once

    const conversationId = (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: "bytes" })).createConversation.id;
    const generate = await gql(t.url, key, SEND_MESSAGE, { input: { conversationId, text: "a red circle", task: "GENERATE" } });
    expect(generate.errors?.[0]?.extensions).toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: null });
    const client = wsClient(t.wsUrl, key);
    try {
      const edit = await wsOnce(client, SEND_MESSAGE, { input: { conversationId, text: "make it blue", task: "EDIT", imageIds: [image.id] } });
      expect(edit.errors?.[0]?.extensions).toMatchObject({ code: "QUOTA_EXCEEDED", retryAfterMs: null });
    } finally {
      await client.dispose();
    }
    const question = await gql(t.url, key, SEND_MESSAGE, { input: { conversationId, text: "what color is it?", task: "UNDERSTAND", imageIds: [image.id] } });
    expect(question.errors).toBeUndefined();
  });

  it("a heavy user's full share does not keep another user out", async () => {
    const heavy = await t.newUser("heavy");
    const light = await t.newUser("light");
    const conv = async (key: string) => (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: "share" })).createConversation.id;
    const heavyConv = await conv(heavy);
    await gqlOk(t.url, heavy, SEND_MESSAGE, { input: { conversationId: heavyConv, text: "one" } });
    await gqlOk(t.url, heavy, SEND_MESSAGE, { input: { conversationId: heavyConv, text: "two" } });
    expect((await gql(t.url, heavy, SEND_MESSAGE, { input: { conversationId: heavyConv, text: "three" } })).errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
    expect((await gql(t.url, light, SEND_MESSAGE, { input: { conversationId: await conv(light), text: "mine" } })).errors).toBeUndefined();
  });

  it("counts refusals in /metrics, by limit, beside the configured limits", async () => {
    const text = await (await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminKey}` } })).text();
    const count = (limit: string) => Number(new RegExp(`unipic_quota_refusals_total\\{limit="${limit}"\\} (\\d+)`).exec(text)?.[1]);
    expect(count("turns_per_minute")).toBeGreaterThanOrEqual(2);
    expect(count("queued_turns")).toBeGreaterThanOrEqual(3);
    expect(count("stored_bytes")).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/unipic_quota_limit\{limit="queued_turns"\} 2/);
    expect(text).toMatch(/unipic_http_errors_total\{route="images_upload",code="QUOTA_EXCEEDED"\} 1/);
  });
});

describe("quotas on the OpenAI routes, and the queue's fairness (real engine)", () => {
  let t: TestApp;
  beforeAll(async () => {
    // One job at a time, so jobs wait in the queue; every non-admin's first image fills USER_STORED_BYTES.
    t = await startTestApp({ ENGINE: "on", ENGINE_THREADS: "1", ENGINE_BATCH: "1", USER_TURNS_PER_MINUTE: "2", USER_STORED_BYTES: "1" });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("answer 429 in OpenAI's shape: a rate limit with Retry-After (the SDK's RateLimitError), a used-up quota that the SDK does not retry", async (ctx) => {
    if (t.app.engine === null) ctx.skip();
    const calls: string[] = [];
    const counting: typeof fetch = (input, init) => {
      calls.push(String(input));
      return fetch(input, init);
    };
    const dave = new OpenAI({ apiKey: await t.newUser("dave"), baseURL: `${t.url}/v1`, maxRetries: 0 });
    expect((await dave.images.generate({ prompt: "a red circle", n: 2 })).data).toHaveLength(2);
    const limited = await dave.images.generate({ prompt: "a red circle" }).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitError);
    const error = limited as RateLimitError;
    expect(error.status).toBe(429);
    expect(error.code).toBe("rate_limit_exceeded");
    expect(error.type).toBe("rate_limit_error");
    expect(Number(error.headers?.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(error.headers?.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(Number(error.headers?.get("retry-after-ms"))).toBeGreaterThan(0);

    // Erin's first image uses her whole allowance; the second request is refused, once, although the SDK may retry twice.
    const erin = new OpenAI({ apiKey: await t.newUser("erin"), baseURL: `${t.url}/v1`, maxRetries: 2, fetch: counting });
    await erin.images.generate({ prompt: "a blue square" });
    calls.length = 0;
    const full = await erin.images.generate({ prompt: "a blue square" }).catch((e: unknown) => e);
    expect(full).toBeInstanceOf(RateLimitError);
    expect((full as RateLimitError).code).toBe("insufficient_quota");
    expect((full as RateLimitError).type).toBe("insufficient_quota");
    expect((full as RateLimitError).headers?.get("x-should-retry")).toBe("false");
    expect(calls).toHaveLength(1);
  });

  it("a user with many turns waiting does not hold back another's: priority, then users in turn", { timeout: 3 * WAIT_MS }, async (ctx) => {
    if (t.app.engine === null) ctx.skip();
    const { services } = t.app;
    // Admins: exempt from the quotas above, but the queue's round robin is the same for everyone.
    const admin = async (name: string) => (await services.store.users.create(name, { isAdmin: true })).apiKey;
    const [first, heavy, light] = [await admin("first"), await admin("heavy"), await admin("light")];
    const conversation = async (key: string) => (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: "fair" })).createConversation.id;
    const send = async (key: string, conversationId: string, text: string, params: Record<string, number>) =>
      (await gqlOk(t.url, key, SEND_MESSAGE, { input: { conversationId, text, task: "GENERATE", params } })).sendMessage.assistantTurn.id as string;
    const row = async (id: string) => (await services.store.turns.getById(parseGlobalId(id)!.key))!;
    const position = async (key: string, id: string) => (await gqlOk(t.url, key, `query($id: ID!) { node(id: $id) { ... on Turn { queuePosition } } }`, { id })).node.queuePosition as number | null;
    // One long job holds the only batch slot (ENGINE_BATCH=1), so everything after it waits:
    // every MAR step and diffusion step there is (tens of seconds; it is cancelled below).
    const { manifest } = t.app.engine!;
    const longest = { steps: manifest.resolutions[0]!.tokens, diffusionSteps: manifest.diffusion.T };
    const blocker = await send(first, await conversation(first), "a long job", longest);
    await waitFor("the long job to start", async () => (await row(blocker)).status, (s) => s === "RUNNING");
    const quick = { steps: 2, diffusionSteps: 2 };
    const heavyConv = await conversation(heavy);
    const heavyTurns: string[] = [];
    for (let i = 0; i < 5; i++) heavyTurns.push(await send(heavy, heavyConv, `a red circle ${i}`, quick));
    const lightTurn = await send(light, await conversation(light), "a blue square", quick);
    await waitFor("light's job in the engine's queue", () => position(light, lightTurn), (p) => p !== null);
    expect((await row(blocker)).status, "the long job still runs: all others wait").toBe("RUNNING");

    // In arrival order light's job would be sixth; by turns it is second: heavy's first, light's, then heavy's others.
    const positions = await Promise.all([...heavyTurns.map((id) => position(heavy, id)), position(light, lightTurn)]);
    expect(positions).toEqual([0, 2, 3, 4, 5, 1]);
    await gqlOk(t.url, first, CANCEL, { id: blocker });
    const all = [...heavyTurns, lightTurn];
    await waitFor("every job to finish", async () => (await Promise.all(all.map(row))).map((r) => r.status), (statuses) => statuses.every((s) => s === "COMPLETED"));
    const rows = await Promise.all(all.map(row));
    const order = [...rows].sort((a, b) => a.startedAt!.getTime() - b.startedAt!.getTime() || a.position - b.position).map((r) => all[rows.indexOf(r)]);
    expect(order).toEqual([heavyTurns[0], lightTurn, ...heavyTurns.slice(1)]);
  });
});
