/**
 * The shipped tiny model's tokenizer reads "an orange" as the "a orange" it was trained on
 * (ShapesWorld's grammar; models/toolkit/tokenizer.py, SERVING_RULES), through the engine's own path:
 * the manifest, tokenizer.json and the chat framing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadManifest } from "../../src/engine/manifest.js";
import { loadTokenizer, type ChatTokenizer } from "../../src/engine/tokenizer.js";
import { MODEL_DIR } from "./fixtures.js";

let tokenizer: ChatTokenizer;
beforeAll(async () => {
  tokenizer = await loadTokenizer(await loadManifest(MODEL_DIR));
});

describe("shipped tokenizer: articles", () => {
  it.each([
    ["is there an orange circle?", "is there a orange circle?"],
    ["An orange square to the left of a red circle", "A orange square to the left of a red circle"],
    ["add an Orange triangle", "add a Orange triangle"],
  ])("%s reads as %s", (users, trained) => {
    expect(tokenizer.chat(users)).toEqual(tokenizer.chat(trained));
  });

  it("leaves other words and the templates' 'an image' as written", () => {
    for (const text of ["can orange", "an red circle", "Generate an image: a red circle"]) {
      expect(tokenizer.decode(tokenizer.chat(text))).toContain(text);
    }
    expect(tokenizer.chat("an red circle")).not.toEqual(tokenizer.chat("a red circle"));
  });
});
