import { parse } from "graphql";
import { describe, expect, it } from "vitest";
import { enforceOperationLimits, measureOperation } from "../../src/api/limits.js";

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
