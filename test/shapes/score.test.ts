import { describe, expect, it } from "vitest";
import type { EditCase, GenerateCase, UnderstandCase } from "../../src/shapes/cases.js";
import { detect } from "../../src/shapes/detect.js";
import {
  caseResult, editForm, scoreCase, scoreEdit, scoreGenerate, scoreKept, scoreUnderstand, summarize, type CaseResult,
} from "../../src/shapes/score.js";
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

  it("needs every named region of a region prompt", () => {
    const c: GenerateCase = {
      task: "generate", category: "region", prompt: "a red circle in the top left",
      expect: { objects: [{ shape: "circle", color: "red", regions: ["top", "left"] }] },
    };
    expect(scoreGenerate(c, detect(render([obj("circle", "red", 0.2, 0.2)], 64), 64))).toBe(1);
    expect(scoreGenerate(c, [obj("circle", "red", 0.5, 0.2)])).toBe(0); // top, not left
    expect(scoreGenerate(c, [obj("circle", "red", 0.2, 0.5)])).toBe(0); // left, not top
    expect(scoreGenerate(c, [obj("circle", "blue", 0.2, 0.2)])).toBe(0); // right place, wrong colour
    // A misplaced red circle does not hide a well placed one, and extra objects are allowed.
    expect(scoreGenerate(c, [obj("circle", "red", 0.8, 0.8), obj("circle", "red", 0.2, 0.2)])).toBe(1);
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

describe("scoreKept and editForm", () => {
  const scene = [obj("square", "blue", 0.6, 0.3), obj("circle", "red", 0.2, 0.7), obj("circle", "red", 0.8, 0.8)];
  const recolor: EditCase = {
    task: "edit", scene, instruction: "make the square green",
    expect: [obj("square", "green", 0.6, 0.3), obj("circle", "red", 0.2, 0.7), obj("circle", "red", 0.8, 0.8)],
  };
  it("counts the untouched objects found near their place, one to one", () => {
    expect(scoreKept(recolor, scene)).toBe(1); // the edit itself is not kept's business
    expect(scoreKept(recolor, [obj("circle", "red", 0.25, 0.75)])).toBe(0.5); // drift 0.05 <= 0.08
    expect(scoreKept(recolor, [obj("circle", "red", 0.3, 0.7), obj("circle", "blue", 0.8, 0.8)])).toBe(0); // 0.1 away; wrong colour
    // One detected circle within reach of two expected ones counts once.
    const pair = [obj("circle", "red", 0.2, 0.5, 0.05), obj("circle", "red", 0.32, 0.5, 0.05)];
    const remove: EditCase = { task: "edit", scene: [...pair, scene[0]!], instruction: "remove the blue square", expect: pair };
    expect(scoreKept(remove, [obj("circle", "red", 0.26, 0.5, 0.05)])).toBe(0.5);
    expect(scoreKept(recolor, [])).toBe(0);
  });
  it("is null when the edit touches every object, and ignores placed ones", () => {
    const move: EditCase = {
      task: "edit", scene: [scene[0]!], instruction: "move the blue square to the left",
      expect: [{ shape: "square", color: "blue", region: "left" }],
    };
    expect(scoreKept(move, [obj("square", "blue", 0.2, 0.5)])).toBeNull();
    expect(scoreKept({ ...move, instruction: "make the square red", expect: [obj("square", "red", 0.6, 0.3)] }, scene)).toBeNull();
  });
  it("reads the form from the verb, and spots the repeat instruction", () => {
    const form = (instruction: string): string => editForm({ ...recolor, instruction });
    expect(["make the square green", "Remove the red circle", "add a red circle on the left", "move it to the top"].map(form))
      .toEqual(["recolor", "remove", "add", "move"]);
    expect(["Repeat this image.", " repeat this image ", "REPEAT THIS IMAGE..", "repeat this image please"].map(form))
      .toEqual(["repeat", "repeat", "repeat", "other"]);
    expect(["", "   ", "paint the square", "make, the square"].map(form)).toEqual(["other", "other", "other", "other"]);
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
      generation: { single_object: null, two_object: null, counting: 0.5, colors: 1, position: null, color_attr: null, region: null, overall: 0.75 },
      understanding: 0.5, editing: null, editing_forms: null, kept: null, repeat: null, cases: 4,
    });
    expect(summarize([])).toEqual({
      generation: null, understanding: null, editing: null, editing_forms: null, kept: null, repeat: null, cases: 0,
    });
    expect(Object.keys(out)).toEqual(["generation", "understanding", "editing", "editing_forms", "kept", "repeat", "cases"]);
  });

  it("leaves region out of overall, and repeats out of editing", () => {
    const results: CaseResult[] = [
      { task: "generate", category: "colors", score: 0.5 },
      { task: "generate", category: "region", score: 1 },
      { task: "edit", score: 1, form: "recolor", kept: 0.5 },
      { task: "edit", score: 0, form: "recolor" },
      { task: "edit", score: 0.5, form: "move", kept: 1 },
      { task: "edit", score: 1, form: "repeat", kept: 0 },
      { task: "edit", score: 0, form: "repeat" },
    ];
    const out = summarize(results);
    expect(out.generation).toMatchObject({ colors: 0.5, region: 1, overall: 0.5 });
    expect(out).toMatchObject({
      editing: 0.5, editing_forms: { recolor: 0.5, remove: null, add: null, move: 0.5 }, kept: 0.75, repeat: 0.5, cases: 7,
    });
    expect(summarize(results.slice(1, 2)).generation?.overall).toBeNull(); // region alone: no GenEval figure
    expect(summarize(results.slice(5))).toMatchObject({ editing: null, editing_forms: null, kept: null, repeat: 0.5 });
  });

  it("averages a case's samples (GenEval draws 4 seeds per prompt)", () => {
    const c: GenerateCase = { task: "generate", category: "colors", prompt: "a red circle", expect: { objects: [{ shape: "circle", color: "red" }] } };
    expect(caseResult(c, [1, 0, 1, 1])).toEqual({ task: "generate", category: "colors", score: 0.75 });
    expect(() => caseResult(c, [])).toThrow(/no scores/);
    const e: EditCase = { task: "edit", scene: [], instruction: "Repeat this image.", expect: [] };
    expect(caseResult(e, [1], 0.5)).toEqual({ task: "edit", score: 1, form: "repeat", kept: 0.5 });
    expect(caseResult({ ...e, instruction: "remove the red circle" }, [0], null)).toEqual({ task: "edit", score: 0, form: "remove" });
  });
});
