/**
 * The OpenAI-compatible routes end to end, driven by the official `openai` client against a real
 * server on the real unipic-tiny graphs. Its pictures are right about nine times in ten and its
 * edits about three in four (MODEL_CARD.md), so image tests check formats, sizes, event order and
 * history, not what is drawn; the chat tests check
 * the answer itself, about a clean centred red circle the model answers reliably.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import OpenAI, { APIError, AuthenticationError, BadRequestError, InternalServerError, NotFoundError, toFile } from "openai";
import type { ChatCompletionChunk, ImageEditStreamEvent, ImageGenStreamEvent } from "openai/resources";
import sharp from "sharp";
import { encodePngSync } from "../../src/images/index.js";
import { render } from "../../src/shapes/world.js";
import { gqlOk, startTestApp, type TestApp } from "../helpers/app.js";
import { waitFor } from "../helpers/wait.js";

const MODEL = "unipic-tiny";
let t: TestApp;
let client: OpenAI;
const RED_CIRCLE = Buffer.from(encodePngSync(render([{ shape: "circle", color: "red", cx: 0.5, cy: 0.5, s: 0.14 }], 64), 64, 64));
const RED_CIRCLE_URL = `data:image/png;base64,${RED_CIRCLE.toString("base64")}`;

const HISTORY = `query($id: ID!) { conversation(id: $id) { title turns(first: 20) { nodes {
  role kind status text seed inputImages { sha256 } outputImages { sha256 width height lineage sourceImage { sha256 } }
} } } }`;

beforeAll(async () => {
  t = await startTestApp({ ENGINE: "on", ENGINE_THREADS: "1" });
  client = new OpenAI({ apiKey: t.adminKey, baseURL: `${t.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await t?.close();
});

/** A PNG's size, read by decoding it (it must be a whole, valid image). */
async function pngSize(b64: string): Promise<{ width?: number; height?: number; format?: string }> {
  const { info } = await sharp(Buffer.from(b64, "base64")).raw().toBuffer({ resolveWithObject: true });
  const meta = await sharp(Buffer.from(b64, "base64")).metadata();
  return { width: info.width, height: info.height, format: meta.format };
}

async function history(conversationId: string | null): Promise<any> {
  expect(conversationId).toBeTruthy();
  return (await gqlOk(t.url, t.adminKey, HISTORY, { id: conversationId })).conversation;
}

describe("OpenAI-compatible API", () => {
  it("lists the loaded model", async () => {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models).toEqual([expect.objectContaining({ id: "unipic-tiny", object: "model", owned_by: "unipic-studio" })]);
    expect((await client.models.retrieve("unipic-tiny")).id).toBe("unipic-tiny");
    await expect(client.models.retrieve("gpt-4o")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("generates n images as b64_json, stored as one conversation with lineage", async () => {
    // `seed` is unipic's extension; the client passes unknown fields through.
    const params = { model: MODEL, prompt: "a red circle", n: 2, size: "64x64", seed: 11 };
    const { data: result, response } = await client.images.generate(params).withResponse();
    expect(result.data).toHaveLength(2);
    for (const image of result.data!) expect(await pngSize(image.b64_json!)).toEqual({ width: 64, height: 64, format: "png" });
    expect(result.created).toBeGreaterThan(0);
    expect(result.usage?.output_tokens).toBe(2 * 64);

    const conv = await history(response.headers.get("x-unipic-conversation-id"));
    expect(conv.title).toBe("Image: a red circle");
    const turns = conv.turns.nodes;
    expect(turns.map((n: any) => `${n.role}:${n.kind}:${n.status}`)).toEqual(["USER:GENERATE:COMPLETED", "ASSISTANT:GENERATE:COMPLETED", "ASSISTANT:GENERATE:COMPLETED"]);
    expect(turns.slice(1).map((n: any) => n.outputImages[0].lineage.seed)).toEqual([11, 12]);
    const shas = turns.slice(1).map((n: any) => n.outputImages[0].sha256);
    // The bytes returned are the stored images.
    const returned = result.data!.map((d) => Buffer.from(d.b64_json!, "base64"));
    for (const [i, sha] of shas.entries()) {
      const stored = await fetch(`${t.url}/images/${sha}.png`, { headers: { authorization: `Bearer ${t.adminKey}` } });
      expect(Buffer.from(await stored.arrayBuffer()).equals(returned[i]!)).toBe(true);
    }
  });

  it("answers with absolute URLs of the image route when asked for url", async () => {
    const result = await client.images.generate({ prompt: "a blue square", response_format: "url" });
    const url = result.data![0]!.url!;
    expect(url).toMatch(new RegExp(`^${t.url.replace(/[.]/g, "\\.")}/images/[0-9a-f]{64}\\.png$`));
    const res = await fetch(url, { headers: { authorization: `Bearer ${t.adminKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(await pngSize(Buffer.from(await res.arrayBuffer()).toString("base64"))).toMatchObject({ width: 64, height: 64 });
  });

  it("streams partial images made from the MAR previews before the completed image", async () => {
    const { data: stream, response } = await client.images.generate({ prompt: "a green triangle", stream: true, partial_images: 2, size: "64x64" }).withResponse();
    expect(response.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events: ImageGenStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = events.map((e) => e.type);
    expect(types.at(-1)).toBe("image_generation.completed");
    expect(types.filter((x) => x === "image_generation.completed")).toHaveLength(1);
    const partials = events.filter((e) => e.type === "image_generation.partial_image");
    expect(partials.length).toBeGreaterThanOrEqual(1);
    expect(partials.length).toBeLessThanOrEqual(2);
    expect(partials.map((p) => p.partial_image_index)).toEqual(partials.map((_, i) => i));
    for (const e of events) expect(await pngSize(e.b64_json)).toEqual({ width: 64, height: 64, format: "png" });
    const done = events.at(-1) as OpenAI.Images.ImageGenCompletedEvent;
    expect(done).toMatchObject({ output_format: "png", size: "64x64" });
    expect(done.usage.output_tokens).toBe(64);
  });

  it("streams nothing partial when partial_images is 0", async () => {
    const stream = await client.images.generate({ prompt: "a yellow circle", stream: true });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types).toEqual(["image_generation.completed"]);
  });

  it("edits an uploaded PNG, plainly and streamed, with the source in the lineage", async () => {
    const image = await toFile(RED_CIRCLE, "circle.png", { type: "image/png" });
    const { data: result, response } = await client.images.edit({ image, prompt: "make the circle blue", size: "64x64" }).withResponse();
    expect(await pngSize(result.data![0]!.b64_json!)).toEqual({ width: 64, height: 64, format: "png" });
    const conv = await history(response.headers.get("x-unipic-conversation-id"));
    const [user, reply] = conv.turns.nodes;
    expect(`${user.role}:${user.kind} ${reply.role}:${reply.kind}:${reply.status}`).toBe("USER:EDIT ASSISTANT:EDIT:COMPLETED");
    expect(reply.outputImages[0].sourceImage.sha256).toBe(user.inputImages[0].sha256);

    const stream = await client.images.edit({ image: await toFile(RED_CIRCLE, "circle.png", { type: "image/png" }), prompt: "make the circle blue", stream: true, partial_images: 1 });
    const events: ImageEditStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((e) => e.type)).toEqual(["image_edit.partial_image", "image_edit.completed"]);
    for (const e of events) expect(await pngSize(e.b64_json)).toMatchObject({ width: 64, height: 64 });
  });

  it("answers a question about a red circle: red", async () => {
    const { data: completion, response } = await client.chat.completions
      .create({
        model: MODEL,
        messages: [{ role: "user", content: [{ type: "text", text: "what color is the circle?" }, { type: "image_url", image_url: { url: RED_CIRCLE_URL } }] }],
      })
      .withResponse();
    expect(completion.object).toBe("chat.completion");
    expect(completion.model).toBe("unipic-tiny");
    expect(completion.choices[0]!.message.role).toBe("assistant");
    expect(completion.choices[0]!.message.content).toContain("red");
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
    const conv = await history(response.headers.get("x-unipic-conversation-id"));
    expect(conv.turns.nodes.map((n: any) => `${n.role}:${n.kind}:${n.status}`)).toEqual(["USER:UNDERSTAND:COMPLETED", "ASSISTANT:UNDERSTAND:COMPLETED"]);
    expect(conv.turns.nodes[1].text).toBe(completion.choices[0]!.message.content);
  });

  it("streams the answer as chat.completion.chunk events ending in [DONE]", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: RED_CIRCLE_URL } }, { type: "text", text: "what color is the circle?" }] }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk); // the client stops at [DONE]
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0]!.id)).toBe(true);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toContain("red");
    const withChoices = chunks.filter((c) => c.choices.length > 0);
    expect(withChoices.at(-1)!.choices[0]!.finish_reason).toBe("stop");
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it("stores a chat's earlier messages as turns, and asks about the latest image", async () => {
    const uploaded = await (await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "image/png" }, body: RED_CIRCLE })).json();
    const { data: completion, response } = await client.chat.completions
      .create({
        model: MODEL,
        messages: [
          { role: "system", content: "You are helpful." },
          { role: "user", content: [{ type: "text", text: "what shape is the red object?" }, { type: "image_url", image_url: { url: `${t.url}${uploaded.url}` } }] },
          { role: "assistant", content: "circle" },
          { role: "user", content: "what color is the circle?" },
        ],
        max_tokens: 4,
      })
      .withResponse();
    expect(typeof completion.choices[0]!.message.content).toBe("string");
    const turns = (await history(response.headers.get("x-unipic-conversation-id"))).turns.nodes;
    expect(turns.map((n: any) => `${n.role}:${n.text}`)).toEqual(["USER:what shape is the red object?", "ASSISTANT:circle", "USER:what color is the circle?", `ASSISTANT:${completion.choices[0]!.message.content}`]);
    expect(turns[2].inputImages[0].sha256).toBe(uploaded.sha256);
  });

  it("cancels the turn when the client goes away", async () => {
    const controller = new AbortController();
    const stream = await client.images
      .generate({ prompt: "a purple square", stream: true, partial_images: 3 }, { signal: controller.signal })
      .withResponse();
    const conversationId = stream.response.headers.get("x-unipic-conversation-id");
    for await (const event of stream.data) {
      if (event.type === "image_generation.partial_image") break; // leaving the loop aborts the request
    }
    controller.abort();
    const status = await waitFor(
      "the abandoned turn to end",
      async () => (await history(conversationId)).turns.nodes[1].status as string,
      (s) => ["CANCELLED", "COMPLETED", "FAILED"].includes(s),
    );
    expect(status).toBe("CANCELLED");
  });

  it("refuses a bad size, a bad key and an unknown model with OpenAI's error classes and shape", async () => {
    const bad = await client.images.generate({ prompt: "a red circle", size: "1024x1024" }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(BadRequestError);
    expect((bad as BadRequestError).status).toBe(400);
    expect((bad as BadRequestError).param).toBe("size");
    expect((bad as BadRequestError).message).toContain("64x64");

    const stranger = new OpenAI({ apiKey: "upk_not-a-key", baseURL: `${t.url}/v1`, maxRetries: 0 });
    const denied = await stranger.images.generate({ prompt: "a red circle" }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthenticationError);
    expect((denied as AuthenticationError).code).toBe("invalid_api_key");

    const noKey = await fetch(`${t.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toEqual({ error: { message: expect.stringContaining("API key"), type: "invalid_request_error", param: null, code: "invalid_api_key" } });

    const unknown = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect((unknown as NotFoundError).code).toBe("model_not_found");

    const noImage = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "what color is the circle?" }] }).catch((e: unknown) => e);
    expect(noImage).toBeInstanceOf(BadRequestError);
    expect((noImage as BadRequestError).param).toBe("messages");

    const long = await client.images.generate({ prompt: "x".repeat(t.config.limits.maxPromptChars + 1) }).catch((e: unknown) => e);
    expect(long).toBeInstanceOf(BadRequestError);
    expect((long as BadRequestError).param).toBe("prompt");

    const remote = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: [{ type: "text", text: "what is it?" }, { type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] })
      .catch((e: unknown) => e);
    expect(remote).toBeInstanceOf(BadRequestError);
    expect((remote as BadRequestError).param).toBe("messages[0].content[1].image_url.url");
  });

  it("refuses an upload over MAX_UPLOAD_BYTES with 413", async () => {
    const big = await toFile(Buffer.alloc(t.config.limits.maxUploadBytes + 1), "big.png", { type: "image/png" });
    const error = await client.images.edit({ image: big, prompt: "make it blue" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toMatchObject({ status: 413, param: "image", code: "payload_too_large" });
  });
});

describe("OpenAI-compatible API without an engine (ENGINE=off)", () => {
  let off: TestApp;
  beforeAll(async () => {
    off = await startTestApp();
  });
  afterAll(async () => {
    await off?.close();
  });

  it("lists no model and answers 503 without storing anything", async () => {
    const idle = new OpenAI({ apiKey: off.adminKey, baseURL: `${off.url}/v1`, maxRetries: 0 });
    expect((await idle.models.list()).data).toEqual([]);
    const error = await idle.images.generate({ prompt: "a red circle" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error).toMatchObject({ status: 503, code: "unavailable" });
    const conversations = await gqlOk(off.url, off.adminKey, "{ conversations(first: 5) { nodes { id } } }");
    expect(conversations.conversations.nodes).toEqual([]);
  });
});
