import { parse } from "graphql";
import { describe, expect, it } from "vitest";
import { enforceOperationLimits, measureOperation } from "../../src/api/limits.js";
import { Task, TurnKind } from "../../src/api/types/enums.js";
import { isQuestion, resolveKind, validateParams } from "../../src/api/validate.js";

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

describe("parameter validation", () => {
  it("keeps what was set and names the field, range and value otherwise", () => {
    expect(validateParams({ steps: 8, cfg: 2.5 })).toEqual({ steps: 8, cfg: 2.5 });
    expect(() => validateParams({ steps: 2.5 })).toThrow("input.params.steps: expected an integer in [1, 256], got 2.5");
    expect(() => validateParams({ temperature: 0 })).toThrow(/input.params.temperature: expected a number in \[0.01, 5\], got 0/);
  });
});

describe("operation limits", () => {
  const limits = { maxPageSize: 100, maxQueryDepth: 4, maxQueryComplexity: 300 };

  it("measures depth through fragments and multiplies page sizes, variables included", () => {
    const doc = parse(`query($n: Int) { conversations(first: $n) { nodes { ...C } } } fragment C on Conversation { id turns(first: 10) { nodes { id } } }`);
    expect(measureOperation(doc, undefined, { n: 5 }, limits)).toEqual({ depth: 5, complexity: 1 + 5 * (1 + (1 + 1 + 10 * (1 + 1))) });
  });

  it("uses the page size given by a variable, whichever of first/last is set", () => {
    const doc = parse(`query($f: Int, $l: Int) { turns(first: $f, last: $l) { nodes { id } } }`);
    const connections = new Set(["turns"]);
    expect(measureOperation(doc, undefined, { f: 37, l: null }, limits, connections).complexity).toBe(1 + 37 * 2);
    expect(measureOperation(doc, undefined, { f: null, l: 40 }, limits, connections).complexity).toBe(1 + 40 * 2);
    expect(measureOperation(doc, undefined, {}, limits, connections).complexity).toBe(1 + 100 * 2);
  });

  it("refuses too deep or too costly operations with LIMIT_EXCEEDED", () => {
    const deep = parse(`{ a { b { c { d { e } } } } }`);
    expect(() => enforceOperationLimits(deep, undefined, {}, limits)).toThrow(expect.objectContaining({ code: "LIMIT_EXCEEDED", field: "query" }));
    const costly = parse(`{ conversations { nodes { id title turns { nodes { id } } } } }`); // no `first`: the maximum page counts
    const connections = new Set(["conversations", "turns"]);
    expect(measureOperation(costly, undefined, {}, limits, connections).complexity).toBe(1 + 100 * (1 + (1 + 1 + 1 + 100 * (1 + 1))));
    expect(() => enforceOperationLimits(costly, undefined, {}, { ...limits, maxQueryDepth: 10 }, connections)).toThrow(/complexity of at most 300, got complexity 20401/);
  });
});
