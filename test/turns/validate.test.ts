import { describe, expect, it } from "vitest";
import { Task, TurnKind } from "../../src/store/index.js";
import { isQuestion, resolveKind } from "../../src/turns/validate.js";

describe("AUTO task resolution", () => {
  it("generates without an image, understands questions and edits instructions with one", () => {
    expect(resolveKind(Task.AUTO, "a red circle", false, false)).toBe(TurnKind.GENERATE);
    expect(resolveKind(Task.AUTO, "what color is the circle?", true, false)).toBe(TurnKind.UNDERSTAND);
    expect(resolveKind(Task.AUTO, "make the circle blue", true, false)).toBe(TurnKind.EDIT);
    // No image attached, but the conversation has one: "make the circle blue" after "a red circle".
    expect(resolveKind(Task.AUTO, "make the circle blue", false, true)).toBe(TurnKind.EDIT);
    expect(resolveKind(Task.AUTO, "how many squares are there", false, true)).toBe(TurnKind.UNDERSTAND);
    expect(resolveKind(Task.AUTO, "a blue square", false, true)).toBe(TurnKind.GENERATE);
    expect(resolveKind(Task.EDIT, "a blue square", false, false)).toBe(TurnKind.EDIT);
    expect(isQuestion("Is there a red circle")).toBe(true);
  });
});
