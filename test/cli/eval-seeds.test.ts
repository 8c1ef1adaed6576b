/** `unipic eval` gives every case its own seeds, so no two prompts share a random stream. */
import { describe, expect, it } from "vitest";
import { caseSeeds, resultLines } from "../../src/cli/eval.js";

describe("caseSeeds", () => {
  it("gives each case its own seeds, none shared with another case", () => {
    const all = Array.from({ length: 300 }, (_, i) => caseSeeds(i, 4));
    expect(all[0]).toEqual([0, 1, 2, 3]);
    expect(all[1]).toEqual([4, 5, 6, 7]);
    expect(new Set(all.flat()).size).toBe(300 * 4);
  });

  it("is a function of the case's place alone (a rerun draws the same pictures)", () => {
    expect(caseSeeds(17, 4)).toEqual(caseSeeds(17, 4));
    expect(caseSeeds(5, 1)).toEqual([5]); // questions and edits: one seed, still the case's own
  });
});

describe("resultLines", () => {
  it("writes one line a case, in case order, with the case's index", () => {
    const text = resultLines([
      { task: "generate", score: 0.75, category: "counting" },
      { task: "edit", score: 1, form: "move", kept: 0.5 },
    ]);
    const lines = text.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { case: 0, task: "generate", score: 0.75, category: "counting" },
      { case: 1, task: "edit", score: 1, form: "move", kept: 0.5 },
    ]);
    expect(text.endsWith("\n")).toBe(true);
    expect(resultLines([])).toBe("");
  });
});
