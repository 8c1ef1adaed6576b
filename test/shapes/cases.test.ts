import { describe, expect, it } from "vitest";
import {
  EDIT_FORMS, REGION_PHRASES, UNDERSTAND_FORMS, editCase, formatCases, genCase, generateCases, parseCases, repeatCase, undCase,
} from "../../src/shapes/cases.js";
import { detect } from "../../src/shapes/detect.js";
import { Rng } from "../../src/shapes/rng.js";
import { GEN_CATEGORIES, editForm, scoreCase, scoreEdit, scoreKept, scoreUnderstand } from "../../src/shapes/score.js";
import { COUNT_WORDS, regionsOf, render } from "../../src/shapes/world.js";

const FORMS: Record<string, RegExp> = {
  single_object: /^a (circle|square|triangle)$/,
  two_object: /^a (circle|square|triangle) and a (circle|square|triangle)$/,
  counting: /^(two|three|four) (circle|square|triangle)s$/,
  colors: /^a (red|green|blue|yellow|purple|orange) (circle|square|triangle)$/,
  position: /^a (circle|square|triangle) (left of|right of|above|below) a (circle|square|triangle)$/,
  color_attr: /^a (\w+) (circle|square|triangle) and a (\w+) (circle|square|triangle)$/,
  region: new RegExp(`^a (red|green|blue|yellow|purple|orange) (circle|square|triangle) (${REGION_PHRASES.map(([p]) => p).join("|")})$`),
};

describe("case generation", () => {
  it("writes every generation category in docs/shapesworld.md's prompt form, with a target that scores 1", () => {
    const rng = new Rng(3);
    for (const cat of GEN_CATEGORIES) {
      for (let k = 0; k < 10; k++) {
        const { case: c, target } = genCase(rng, cat);
        expect(c.prompt).toMatch(FORMS[cat] as RegExp);
        expect(scoreCase(c, detect(render(target, 64), 64)), c.prompt).toBe(1);
      }
    }
  });

  it("region prompts expect the phrase's region words, and every phrase comes up", () => {
    const rng = new Rng(8);
    const seen = new Set<string>();
    for (let k = 0; k < 120; k++) {
      const { case: c, target } = genCase(rng, "region");
      const phrase = REGION_PHRASES.find(([p]) => c.prompt.endsWith(` ${p}`))!;
      seen.add(phrase[0]);
      const [, color, shape] = c.prompt.split(" ");
      expect(c.expect).toEqual({ objects: [{ shape, color, regions: phrase[1] }] });
      expect(regionsOf(target[0]!)).toEqual(expect.arrayContaining([...phrase[1]]));
    }
    expect(seen.size).toBe(REGION_PHRASES.length);
  });

  it("edits: the target scores 1 and doing nothing scores 0, for every form", () => {
    const rng = new Rng(4);
    for (const form of EDIT_FORMS) {
      for (let k = 0; k < 10; k++) {
        const { case: c, target } = editCase(rng, form);
        expect(c.instruction.split(" ")[0]).toBe({ recolor: "make", remove: "remove", add: "add", move: "move" }[form]);
        expect(scoreEdit(c, detect(render(target, 64), 64)), c.instruction).toBe(1);
        expect(scoreEdit(c, detect(render(c.scene, 64), 64)), c.instruction).toBe(0);
        expect(editForm(c)).toBe(form);
      }
    }
  });

  it("repeat cases: the source itself is the right answer, every object kept", () => {
    const rng = new Rng(5);
    for (let k = 0; k < 10; k++) {
      const { case: c, target } = repeatCase(rng);
      expect([c.instruction, editForm(c)]).toEqual(["Repeat this image.", "repeat"]);
      expect(target).toEqual(c.scene);
      const det = detect(render(c.scene, 64), 64);
      expect([scoreEdit(c, det), scoreKept(c, det)]).toEqual([1, 1]);
    }
  });

  it("asks understanding questions whose answers are right about the scene", () => {
    const rng = new Rng(11);
    for (const form of UNDERSTAND_FORMS) {
      for (let k = 0; k < 30; k++) {
        const c = undCase(rng, form);
        const w = c.question.replace(/\?$/, "").split(" ");
        const { scene, answer } = c;
        if (form === "color") expect(scene.filter((o) => o.shape === w[4]).map((o) => o.color)).toEqual([answer]);
        if (form === "count") expect(COUNT_WORDS[scene.filter((o) => `${o.shape}s` === w[2]).length - 1]).toBe(answer);
        if (form === "shape") expect(scene.filter((o) => o.color === w[4]).map((o) => o.shape)).toEqual([answer]);
        if (form === "exists") expect(scene.some((o) => o.color === w[3] && o.shape === w[4]) ? "yes" : "no").toBe(answer);
        if (form === "where") {
          const hit = scene.filter((o) => o.color === w[3] && o.shape === w[4]);
          expect(hit.map((o) => regionsOf(o))).toEqual([[answer]]);
        }
        expect(scoreUnderstand(c, answer)).toBe(1);
      }
    }
  });

  it("generates reproducible, valid case files from a seed", () => {
    const a = generateCases(4, 9);
    expect(a).toHaveLength(7 * 4 + 4 + 4);
    expect(generateCases(4, 9)).toEqual(a);
    expect(generateCases(4, 10)).not.toEqual(a);
    expect(parseCases(formatCases(a))).toEqual(a);
    expect(() => generateCases(-1, 1)).toThrow(/nPerCategory/);
    expect(() => generateCases(0, 1)).toThrow(/no cases/);
    // No prompts: an edit-only evaluation draws no images to make.
    const e = generateCases(0, 9, 0, { questions: 0, edits: 8 });
    expect(e.map((x) => x.task)).toEqual(Array(8).fill("edit"));
    // Repeats come last (as in Python's evaluate.build_cases), so the other cases stay the same.
    const b = generateCases(4, 9, 3);
    expect(b.slice(0, a.length)).toEqual(a);
    expect(b.slice(a.length).map((c) => c.task === "edit" && editForm(c))).toEqual(["repeat", "repeat", "repeat"]);
    expect(parseCases(formatCases(b))).toEqual(b);
    expect(() => generateCases(1, 1, -1)).toThrow(/repeats/);
    // Questions and edits may be counted apart from the prompts (the full evaluation: 50 / 300 / 300).
    const c = generateCases(2, 9, 1, { questions: 6, edits: 8 });
    expect(c.filter((x) => x.task === "generate")).toHaveLength(7 * 2);
    expect(c.filter((x) => x.task === "understand")).toHaveLength(6);
    expect(c.filter((x) => x.task === "edit" && editForm(x) !== "repeat").map((x) => x.task === "edit" && editForm(x)))
      .toEqual(["recolor", "remove", "add", "move", "recolor", "remove", "add", "move"]);
    expect(() => generateCases(1, 1, 0, { edits: -1 })).toThrow(/edits/);
  });
});

describe("JSONL validation", () => {
  const good = JSON.stringify({ task: "generate", category: "counting", prompt: "three triangles", expect: { count: { shape: "triangle", n: 3 } } });
  const bad: [string, RegExp][] = [
    ["{not json", /^x\.jsonl:2: invalid JSON/],
    ['{"task":"paint"}', /^x\.jsonl:2: case\.task: expected one of generate, understand, edit, got "paint"/],
    ['{"task":"generate","category":"counting","prompt":"x","expect":{"count":{"shape":"triangle","n":"3"}}}', /x\.jsonl:2: case\.expect\.count\.n: expected an integer/],
    ['{"task":"generate","category":"position","prompt":"x","expect":{"objects":[{"shape":"circle"}],"relations":[{"a":0,"rel":"left of","b":1}]}}',
      /case\.expect\.relations\[0\]\.b: expected an index into expect\.objects/],
    ['{"task":"generate","category":"colors","prompt":"x","expect":{}}', /case\.expect: needs 'objects' or 'count'/],
    ['{"task":"understand","scene":[{"shape":"circle","color":"red","cx":0.3,"cy":0.4}],"question":"q","answer":"a"}',
      /case\.scene\[0\]\.s: expected a finite number, got nothing/],
    ['{"task":"edit","scene":[{"shape":"circle","color":"red","cx":0.3,"cy":0.4,"s":0.1}],"instruction":"i","expect":[{"shape":"circle","color":"red","region":"middle"}]}',
      /case\.expect\[0\]\.region: expected one of/],
    ["[1,2]", /x\.jsonl:2: case: expected a JSON object/],
    ['{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":[]}]}}',
      /case\.expect\.objects\[0\]\.regions: expected a non-empty list of region words, got \[\]/],
    ['{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":"left"}]}}',
      /case\.expect\.objects\[0\]\.regions: expected a non-empty list/],
    ['{"task":"generate","category":"region","prompt":"x","expect":{"objects":[{"shape":"circle","regions":["top","middle"]}]}}',
      /case\.expect\.objects\[0\]\.regions\[1\]: expected one of left, right, top, bottom, center, got "middle"/],
  ];

  it("accepts good lines and skips blank ones", () => {
    expect(parseCases(`${good}\n\n${good}\r\n`, "x.jsonl")).toHaveLength(2);
  });

  it.each(bad)("names the line and field for %s", (line, pattern) => {
    expect(() => parseCases(`${good}\n${line}`, "x.jsonl")).toThrow(pattern);
  });
});
