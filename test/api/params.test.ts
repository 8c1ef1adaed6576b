/**
 * sendMessage checks every sampling parameter against the model before it stores anything (one
 * table, the engine's), and the stored turn keeps the resolved parameters. The server runs no
 * engine (ENGINE=off) but reads its model's manifest: the committed unipic-tiny's (64x64, 64
 * tokens, T 1000, answers of 16 tokens) with edit_sampling_defaults added, so edits show their
 * own defaults.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODEL_DIR } from "../engine/fixtures.js";
import { CREATE_CONVERSATION, gql, gqlOk, startTestApp, type TestApp } from "../helpers/app.js";

const SEND = `mutation($input: SendMessageInput!) { sendMessage(input: $input) { userTurn { params } assistantTurn { kind seed params } } }`;
const COUNT = `query($id: ID!) { conversation(id: $id) { turns { totalCount } } }`;

/** Fixed defaults (the shipped ones change with the weights): what the resolved turns below expect. */
const SAMPLING = { steps: 16, cfg: 3, cfgSchedule: "constant", temperature: 1, diffusionSteps: 25 };

let t: TestApp;
let dir: string;
let conversationId: string;
let imageId: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "unipic-params-"));
  const manifest = JSON.parse(await readFile(path.join(MODEL_DIR, "manifest.json"), "utf8")) as Record<string, unknown>;
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ ...manifest, sampling_defaults: SAMPLING, edit_sampling_defaults: { cfg: 1.5 } }));
  t = await startTestApp({ MODEL_DIR: dir });
  conversationId = (await gqlOk(t.url, t.adminKey, CREATE_CONVERSATION, { title: "params" })).createConversation.id;
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer();
  const res = await fetch(`${t.url}/images`, { method: "POST", headers: { authorization: `Bearer ${t.adminKey}`, "content-type": "image/png" }, body: new Uint8Array(png) });
  imageId = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function turnCount(): Promise<number> {
  return (await gqlOk(t.url, t.adminKey, COUNT, { id: conversationId })).conversation.turns.totalCount;
}

function send(params: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return gql(t.url, t.adminKey, SEND, { input: { conversationId, text: "a red circle", task: "GENERATE", params, ...extra } });
}

// One bad value per parameter, with what the engine's table says of it.
const OUT_OF_RANGE: Array<[string, unknown, string]> = [
  ["steps", 100, "an integer in [1, 64]"],
  ["cfg", 31, "a number in [0, 30]"],
  ["temperature", 5.5, "a number in [0, 5]"],
  ["diffusionSteps", 1001, "an integer in [1, 1000]"],
  ["seed", -1, "an integer in [0, 2147483647]"],
  ["resolution", 32, "one of 64"],
  ["maxTokens", 5000, "an integer in [1, 4096]"],
  ["previewEvery", 1025, "an integer in [1, 1024]"],
  ["previewSize", 8, "an integer in [16, 1024]"],
];

describe("sendMessage's parameters", () => {
  it.each(OUT_OF_RANGE)("refuses %s = %s before storing anything", async (name, value, expected) => {
    const before = await turnCount();
    const r = await send({ [name]: value });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "BAD_INPUT", field: `input.params.${name}`, expected, got: String(value) });
    expect(await turnCount()).toBe(before);
  });

  it.each([["cfgSchedule"], ["previewMethod"]])("refuses an unknown %s (a GraphQL enum) before storing anything", async (name) => {
    const before = await turnCount();
    const r = await send({ [name]: "SOMETIMES" });
    expect(r.status).toBe(400);
    expect(r.errors?.[0]?.message).toContain(name);
    expect(await turnCount()).toBe(before);
  });

  it("checks a question's parameters too: none that no turn of this model could use", async () => {
    const r = await send({ steps: 100 }, { task: "UNDERSTAND", imageIds: [imageId], text: "what color is it?" });
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "BAD_INPUT", field: "input.params.steps" });
  });

  it("accepts the engine's whole range (where the API's own table was narrower) and stores the turn resolved", async () => {
    const r = await gqlOk(t.url, t.adminKey, SEND, { input: { conversationId, text: "a red circle", task: "GENERATE", params: { steps: 64, temperature: 0, previewEvery: 1024, seed: 5 } } });
    const resolved = { steps: 64, cfg: 3, cfgSchedule: "constant", temperature: 0, diffusionSteps: 25, seed: 5, resolution: 64, previewMethod: "linear", previewEvery: 1024 };
    expect(r.sendMessage.assistantTurn).toEqual({ kind: "GENERATE", seed: 5, params: resolved });
    expect(r.sendMessage.userTurn.params).toEqual(resolved);
  });

  it("stores an edit with the edit defaults and a question with its own parameters", async () => {
    const edit = await gqlOk(t.url, t.adminKey, SEND, { input: { conversationId, text: "make it blue", task: "EDIT", imageIds: [imageId], params: { seed: 1 } } });
    expect(edit.sendMessage.assistantTurn.params).toMatchObject({ cfg: 1.5, steps: 16, seed: 1 });
    const question = await gqlOk(t.url, t.adminKey, SEND, { input: { conversationId, text: "what color is it?", task: "UNDERSTAND", imageIds: [imageId], params: { seed: 2 } } });
    expect(question.sendMessage.assistantTurn.params).toEqual({ maxTokens: 16, resolution: 64, seed: 2 }); // understanding_defaults.max_new_tokens
  });
});
