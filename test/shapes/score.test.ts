import { describe, expect, it } from "vitest";
import type { EditCase, GenerateCase, UnderstandCase } from "../../src/shapes/cases.js";
import { detect } from "../../src/shapes/detect.js";
import { caseResult, scoreCase, scoreEdit, scoreGenerate, scoreUnderstand, summarize } from "../../src/shapes/score.js";
import { render } from "../../src/shapes/world.js";
import { obj } from "./helpers.js";

describe("scoreGenerate", () => {
  const position: GenerateCase = {
    task: "generate", category: "position", prompt: "a circle left of a square",
    expect: { objects: [{ shape: "circle" }, { shape: "square" }], relations: [{ a: 0, rel: "left of", b: 1 }] },
  };

  it("checks relations on the rendered and detected scene", () => {
    const good = [obj("circle", "red", 0.2, 0.5), obj("square", "blue", 0.7, 0.5)];
    const swapped = [obj("circle", "red", 0.7, 0.5), obj("square", "blue", 0.2, 0.5)];
    expect(scoreGenerate(position, detect(render(good, 64), 64))).toBe(1);
    expect(scoreGenerate(position, detect(render(swapped, 64), 64))).toBe(0);
  });

  it("needs exact counts, bound colours, and distinct objects", () => {
    const count: GenerateCase = { task: "generate", category: "counting", prompt: "two squares", expect: { count: { shape: "square", n: 2 } } };
    const three = [obj("square", "red", 0.2, 0.2), obj("square", "red", 0.7, 0.2), obj("square", "blue", 0.5, 0.7)];
    expect([scoreGenerate(count, three), scoreGenerate(count, three.slice(0, 2))]).toEqual([0, 1]);
    const attr: GenerateCase = {
      task: "generate", category: "color_attr", prompt: "a red circle and a blue square",
      expect: { objects: [{ shape: "circle", color: "red" }, { shape: "square", color: "blue" }] },
    };
    expect(scoreGenerate(attr, [obj("circle", "blue", 0.2, 0.2), obj("square", "red", 0.7, 0.7)])).toBe(0);
    expect(scoreGenerate(attr, [obj("circle", "red", 0.2, 0.2), obj("square", "blue", 0.7, 0.7)])).toBe(1);
    const two: GenerateCase = {
      task: "generate", category: "two_object", prompt: "a circle and a circle", expect: { objects: [{ shape: "circle" }, { shape: "circle" }] },
    };
    expect(scoreGenerate(two, [obj("circle", "red", 0.2, 0.2)])).toBe(0);
  });
});

describe("scoreUnderstand", () => {
  const c: UnderstandCase = { task: "understand", scene: [obj("circle", "red", 0.5, 0.5)], question: "how many circles are there?", answer: "two" };
  it("matches after lower-casing and trimming one final period, and accepts digits", () => {
    expect(["two", "Two.", " TWO ", "2", "3", "two..", "twoo"].map((a) => scoreUnderstand(c, a))).toEqual([1, 1, 1, 1, 0, 0, 0]);
    expect(() => scoreUnderstand(c, 2 as unknown as string)).toThrow(/answer/);
    expect(() => scoreCase(c, [])).toThrow(/answer string/);
  });
});

describe("scoreEdit", () => {
  const c: EditCase = {
    task: "edit", scene: [obj("square", "blue", 0.6, 0.3, 0.11)], instruction: "add a red circle on the left",
    expect: [obj("square", "blue", 0.6, 0.3, 0.11), { shape: "circle", color: "red", region: "left" }],
  };
  const ok = [obj("square", "blue", 0.65, 0.35, 0.11), obj("circle", "red", 0.2, 0.8)];
  it("allows 0.08 drift for kept objects and checks the region of placed ones", () => {
    expect(scoreEdit(c, ok)).toBe(1);
    expect(scoreEdit(c, [ok[0]!, obj("circle", "red", 0.5, 0.8)])).toBe(0); // not on the left
    expect(scoreEdit(c, [obj("square", "blue", 0.7, 0.3), ok[1]!])).toBe(0); // drifted 0.1
    expect(scoreEdit(c, [...ok, obj("triangle", "red", 0.8, 0.8)])).toBe(0); // extra object
    expect(scoreEdit(c, [obj("square", "green", 0.6, 0.3), ok[1]!])).toBe(0); // wrong colour
  });
});

describe("summarize", () => {
  it("has the eval --json shape, with null for absent tasks and categories", () => {
    const out = summarize([
      { task: "generate", category: "counting", score: 0.5 },
      { task: "generate", category: "colors", score: 1 },
      { task: "understand", score: 1 },
      { task: "understand", score: 0 },
    ]);
    expect(out).toEqual({
      generation: { single_object: null, two_object: null, counting: 0.5, colors: 1, position: null, color_attr: null, overall: 0.75 },
      understanding: 0.5, editing: null, cases: 4,
    });
    expect(summarize([])).toEqual({ generation: null, understanding: null, editing: null, cases: 0 });
  });

  it("averages a case's samples (GenEval draws 4 seeds per prompt)", () => {
    const c: GenerateCase = { task: "generate", category: "colors", prompt: "a red circle", expect: { objects: [{ shape: "circle", color: "red" }] } };
    expect(caseResult(c, [1, 0, 1, 1])).toEqual({ task: "generate", category: "colors", score: 0.75 });
    expect(() => caseResult(c, [])).toThrow(/no scores/);
  });
});
