import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, startTestApp } from "../helpers/app.js";
import { freshLocation, type DataLocation } from "../helpers/db.js";

let where: DataLocation;
beforeAll(async () => {
  where = await freshLocation();
});
afterAll(async () => {
  await where?.cleanup();
});

describe("restart", () => {
  it(`keeps users, conversations, turns and images (${process.env.DATABASE_URL ? "PostgreSQL" : "PGlite data dir"})`, async () => {
    const first = await startTestApp({}, where);
    const key = await first.newUser("survivor");
    const conv = (await gqlOk(first.url, key, CREATE_CONVERSATION, { title: "before restart" })).createConversation.id;
    const png = await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 240, g: 200, b: 30 } } }).png().toBuffer();
    const uploaded = (await (await fetch(`${first.url}/images`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "image/png" }, body: png })).json()) as any;
    await gqlOk(first.url, key, SEND_MESSAGE, { input: { conversationId: conv, text: "what color is it?", imageIds: [uploaded.id] } });
    await first.close();

    const second = await startTestApp({}, where);
    try {
      const data = await gqlOk(second.url, key, `query($id: ID!) { conversation(id: $id) { title turns { nodes { role text status kind inputImages { sha256 } } } } }`, { id: conv });
      expect(data.conversation.title).toBe("before restart");
      expect(data.conversation.turns.nodes).toEqual([
        { role: "USER", text: "what color is it?", status: "COMPLETED", kind: "UNDERSTAND", inputImages: [{ sha256: uploaded.sha256 }] },
        { role: "ASSISTANT", text: "", status: "QUEUED", kind: "UNDERSTAND", inputImages: [] },
      ]);
      const bytes = Buffer.from(await (await fetch(`${second.url}${uploaded.url}`, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer());
      expect(bytes.equals(png)).toBe(true);
    } finally {
      await second.close();
    }
  }, 180_000);
});
