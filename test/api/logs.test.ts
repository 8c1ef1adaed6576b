/**
 * No API key, image bytes or prompt text in the server log (LOG_LEVEL=info, what `npm start`
 * prints): a real server with the engine, its log captured, taken through successes and failures
 * (wrong keys, bad input, a failing query whose driver error quotes its parameters, as drizzle's
 * do); then the log is searched for every secret it saw. And the redaction net under it.
 */
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redactSecrets } from "../../src/log.js";
import { guarded } from "../../src/store/util.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gql, gqlOk, isFinalTurnEvent, startTestApp, subscription, wsClient, type TestApp } from "../helpers/app.js";
import { collect } from "../helpers/collect.js";
import { WAIT_MS } from "../helpers/wait.js";

const lines: string[] = [];
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ENGINE: "on", ENGINE_THREADS: "1" }, undefined, { log: (line) => lines.push(line) });
});
afterAll(async () => {
  await t?.close();
});

const PROMPT = "a zebra-striped hexagon 9f3c beside a moon";
const QUESTION = "what colour is the quokka-7c2e?";
const TITLE = "secret plans 51d0";

describe("the server log", { timeout: 3 * WAIT_MS }, () => {
  it("holds no key, image bytes or prompt text, through successes and failures", async () => {
    const key = await t.newUser("logger");
    const wrongKey = `upk_${randomBytes(30).toString("base64url").replace(/[-_]/g, "x").slice(0, 40)}`;
    const png = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 17, g: 201, b: 93 } } }).png().toBuffer();
    const b64 = png.toString("base64");

    // A turn that runs, over HTTP, followed over WebSocket.
    const conversationId = (await gqlOk(t.url, key, CREATE_CONVERSATION, { title: TITLE })).createConversation.id;
    const sent = await gqlOk(t.url, key, SEND_MESSAGE, { input: { conversationId, text: PROMPT, params: { steps: 2, diffusionSteps: 2 } } });
    const client = wsClient(t.wsUrl, key);
    const events = await collect(subscription(client, `subscription($id: ID!) { turnUpdated(id: $id) { kind turn { status } } }`, { id: sent.sendMessage.assistantTurn.id }), {
      until: (evs) => isFinalTurnEvent(evs.at(-1)?.turnUpdated),
      timeoutMs: WAIT_MS,
    });
    await client.dispose();
    expect(events.at(-1)!.turnUpdated.turn.status).toBe("COMPLETED");

    // An upload, and a question about it through the OpenAI routes with a data URL.
    const upload = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "image/png" }, body: new Uint8Array(png) });
    expect(upload.status).toBe(201);
    const openai = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await openai.chat.completions.create({ model: "unipic-tiny", messages: [{ role: "user", content: [{ type: "text", text: QUESTION }, { type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } }] }] });

    // Failures: a wrong key (HTTP, WebSocket, /v1), bad input quoting the prompt, a page too large.
    expect((await gql(t.url, wrongKey, `{ viewer { name } }`)).status).toBe(401);
    const refused = wsClient(t.wsUrl, wrongKey);
    await expect(collect(subscription(refused, `subscription($id: ID!) { turnUpdated(id: $id) { kind } }`, { id: sent.sendMessage.assistantTurn.id }))).rejects.toThrow();
    await refused.dispose();
    await new OpenAI({ apiKey: wrongKey, baseURL: `${t.url}/v1`, maxRetries: 0 }).images.generate({ prompt: PROMPT }).catch(() => undefined);
    const long = await gql(t.url, key, SEND_MESSAGE, { input: { conversationId, text: `${PROMPT} ${"x".repeat(t.config.limits.maxPromptChars)}` } });
    expect(long.errors?.[0]?.extensions?.code).toBe("LIMIT_EXCEEDED");

    // A failing query: the driver's error quotes its parameters (the title, and here the key and
    // bytes too); the server logs the failure, never its cause.
    const { conversations } = t.app.store;
    const rename = conversations.rename;
    conversations.rename = guarded("conversations", {
      rename: async (_owner: string, _id: string, title: string) => {
        throw new Error(`Failed query: update "conversations" set "title" = $1\nparams: ${title},${key},${b64}`);
      },
    }).rename;
    try {
      const failed = await gql(t.url, key, `mutation($id: ID!, $title: String!) { renameConversation(id: $id, title: $title) { id } }`, { id: conversationId, title: `${TITLE} ${PROMPT}` });
      expect(failed.errors?.[0]?.extensions?.code).toBe("INTERNAL");
    } finally {
      conversations.rename = rename;
    }

    const log = lines.join("\n");
    expect(log).toContain("store.conversations.rename failed"); // the failure itself is logged
    for (const [what, secret] of [
      ["the admin's key", t.adminKey],
      ["the user's key", key],
      ["a wrong key", wrongKey],
      ["the prompt", "zebra-striped"],
      ["the question", "quokka"],
      ["the title", "secret plans"],
      ["the image as base64", b64.slice(0, 40)],
      ["the image as hex", png.toString("hex").slice(0, 40)],
    ] as const) {
      expect(log.includes(secret), `${what} in the log:\n${log.slice(0, 2000)}`).toBe(false);
    }
  });
});

describe("redactSecrets", () => {
  it("removes keys, bearer credentials, data URLs and long base64 or hex, and keeps ids and stack traces readable", () => {
    const key = `upk_${"A1b2C3d4".repeat(5)}`;
    const line = `error: Authorization: Bearer ${key} sent data:image/png;base64,${"iVBORw0KGgo".repeat(20)} and ${"ab12".repeat(60)}`;
    const out = redactSecrets(line);
    expect(out).not.toContain(key.slice(4));
    expect(out).not.toContain("iVBORw0KGgo");
    expect(out).not.toContain("ab12ab12ab12");
    expect(out).toBe("error: Authorization: Bearer [redacted] sent data:image/png;base64,[242 chars redacted] and [240 chars redacted]");
    const source = new URL("../../src/store/util.ts", import.meta.url).href; // this checkout's own path
    const stack = `AppError: store.turns.get failed\n    at ${source}:47:15 turn 3f1c2a9e-8f0b-4c1e-9d7a-0b6e2f4c8a11 image ` + "e3b0c442".repeat(8);
    expect(redactSecrets(stack)).toBe(stack);
  });
});
