import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toGlobalId } from "../../src/api/ids.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gql, gqlOk, startTestApp, type TestApp } from "../helpers/app.js";
import { SLOWDOWN } from "../helpers/wait.js";

let t: TestApp;
let conversationId: string;
beforeAll(async () => {
  t = await startTestApp({ MAX_PROMPT_CHARS: "100", MAX_QUERY_DEPTH: "6", MAX_UPLOAD_BYTES: "200000", MAX_IMAGE_PIXELS: "1000000" });
  conversationId = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "bad input" })).createConversation.id;
});
afterAll(async () => {
  await t?.close();
});

/** After every bad request the server must still answer a good one. */
async function stillServing(): Promise<void> {
  const data = await gqlOk(t.url, t.adminKey, `{ viewer { name } }`);
  expect(typeof data.viewer.name).toBe("string");
}

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG whose header claims width x height, followed by a token IDAT: a decompression-bomb probe. */
function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr), chunk("IDAT", Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk("IEND", Buffer.alloc(0))]);
}

async function upload(body: Buffer | string, contentType = "image/png"): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": contentType }, body: typeof body === "string" ? body : new Uint8Array(body) });
  return { status: res.status, body: await res.json() };
}

describe("bad input gets a clear error with a code, and the server keeps answering", () => {
  it("unknown and malformed ids", async () => {
    const unknown = await gql(t.url, t.adminKey, `query($id: ID!) { conversation(id: $id) { id } }`, { id: toGlobalId("Conversation", randomUUID()) });
    expect(unknown.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const malformed = await gql(t.url, t.adminKey, `query($id: ID!) { conversation(id: $id) { id } }`, { id: "%%% not an id" });
    expect(malformed.errors?.[0]?.extensions).toMatchObject({ code: "BAD_INPUT", field: "id", expected: "a Conversation id" });
    const wrongType = await gql(t.url, t.adminKey, `mutation($id: ID!) { cancelTurn(id: $id) { id } }`, { id: conversationId });
    expect(wrongType.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    await stillServing();
  });

  it("an oversized prompt", async () => {
    const r = await gql(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId, text: "a red circle ".repeat(20) } });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "LIMIT_EXCEEDED", field: "input.text", expected: "at most 100 characters", got: "260 characters" });
    const turns = await gqlOk(t.url, t.adminKey, `query($id: ID!) { conversation(id: $id) { turns { totalCount } } }`, { id: conversationId });
    expect(turns.conversation.turns.totalCount).toBe(0);
    await stillServing();
  });

  it("parameters out of range", async () => {
    const r = await gql(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId, text: "a red circle", params: { steps: 0 } } });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "BAD_INPUT", field: "input.params.steps", got: "0" });
    const noImage = await gql(t.url, t.adminKey, SEND_MESSAGE, { input: { conversationId, text: "make it blue", task: "EDIT" } });
    expect(noImage.errors?.[0]?.extensions).toMatchObject({ code: "BAD_INPUT", field: "input.imageIds" });
    await stillServing();
  });

  it("a non-image upload, a truncated PNG and a PNG header claiming 20000x20000", async () => {
    const text = await upload("hello, this is not an image", "image/png");
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe("UNSUPPORTED_MEDIA");
    expect(text.body.error.expected).toMatch(/PNG, JPEG or WebP/);

    const good = Buffer.from(await (await import("sharp")).default({ create: { width: 64, height: 64, channels: 3, background: { r: 1, g: 2, b: 3 } } }).png().toBuffer());
    const truncated = await upload(good.subarray(0, Math.floor(good.length * 0.6)));
    expect(truncated.status).toBe(415);
    expect(truncated.body.error.code).toBe("UNSUPPORTED_MEDIA");

    const started = Date.now();
    const bomb = await upload(pngClaiming(20000, 20000));
    expect(Date.now() - started).toBeLessThan(5000 * SLOWDOWN); // refused from the header, not decoded
    expect(bomb.status).toBe(400);
    expect(bomb.body.error).toMatchObject({ code: "LIMIT_EXCEEDED", got: "20000x20000" });

    const huge = await upload(Buffer.alloc(300_000, 7));
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe("PAYLOAD_TOO_LARGE");
    await stillServing();
  });

  it("a too-deep query", async () => {
    const deep = `query($id: ID!) { conversation(id: $id) { turns { nodes { conversation { turns { nodes { conversation { id } } } } } } } }`;
    const r = await gql(t.url, t.adminKey, deep, { id: conversationId });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "LIMIT_EXCEEDED", field: "query", expected: "a depth of at most 6" });
    await stillServing();
  });

  it("a missing or wrong key, over GraphQL and the image routes", async () => {
    const missing = await gql(t.url, null, `{ viewer { name } }`);
    expect(missing.status).toBe(401);
    expect(missing.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const wrong = await gql(t.url, "upk_wrong", `{ viewer { name } }`);
    expect(wrong.status).toBe(401);
    expect(wrong.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const image = await fetch(`${t.url}/images/${"a".repeat(64)}.png`);
    expect(image.status).toBe(401);
    expect(((await image.json()) as any).error.code).toBe("UNAUTHENTICATED");
    await stillServing();
  });

  it("malformed JSON and unknown fields", async () => {
    const res = await fetch(`${t.url}/graphql`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "application/json" }, body: "{nope" });
    expect(res.status).toBe(400);
    const unknownField = await gql(t.url, t.adminKey, `{ viewer { password } }`);
    expect(unknownField.status).toBe(400);
    expect(unknownField.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    await stillServing();
  });
});
