import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { printSdl } from "../../src/api/schema.js";

describe("schema/schema.graphql", () => {
  it("matches the SDL emitted from the type-graphql classes (run `npm run schema:emit` after changing them)", async () => {
    const committed = await readFile(new URL("../../schema/schema.graphql", import.meta.url), "utf8");
    expect(committed).toBe(await printSdl());
  });

  it("exposes the Relay shapes clients rely on", async () => {
    const sdl = await printSdl();
    expect(sdl).toContain("interface Node");
    expect(sdl).toMatch(/node\(id: ID!\): Node/);
    expect(sdl).toMatch(/turns\(after: String, before: String, first: Int, last: Int\): TurnConnection!/);
    expect(sdl).toMatch(/turnUpdated\(id: ID!\): TurnEvent!/);
    expect(sdl).toMatch(/conversationUpdated\(id: ID!\): ConversationEvent!/);
  });
});
