import { describe, expect, it } from "vitest";
import {
  EDIT_FORMS, UNDERSTAND_FORMS, editCase, formatCases, genCase, generateCases, parseCases, undCase,
} from "../../src/shapes/cases.js";
import { detect } from "../../src/shapes/detect.js";
import { Rng } from "../../src/shapes/rng.js";
import { GEN_CATEGORIES, scoreCase, scoreEdit, scoreUnderstand } from "../../src/shapes/score.js";
import { COUNT_WORDS, regionsOf, render } from "../../src/shapes/world.js";

const FORMS: Record<string, RegExp> = {
  single_object: /^a (circle|square|triangle)$/,
  two_object: /^a (circle|square|triangle) and a (circle|square|triangle)$/,
  counting: /^(two|three|four) (circle|square|triangle)s$/,
  colors: /^a (red|green|blue|yellow|purple|orange) (circle|square|triangle)$/,
  position: /^a (circle|square|triangle) (left of|right of|above|below) a (circle|square|triangle)$/,
  color_attr: /^a (\w+) (circle|square|triangle) and a (\w+) (circle|square|triangle)$/,
};

describe("case generation", () => {
  it("writes every generation category in the spec's prompt form, with a target that scores 1", () => {
    const rng = new Rng(3);
    for (const cat of GEN_CATEGORIES) {
      for (let k = 0; k < 10; k++) {
        const { case: c, target } = genCase(rng, cat);
        expect(c.prompt).toMatch(FORMS[cat] as RegExp);
        expect(scoreCase(c, detect(render(target, 64), 64)), c.prompt).toBe(1);
      }
    }
  });

  it("edits: the target scores 1 and doing nothing scores 0, for every form", () => {
    const rng = new Rng(4);
    for (const form of EDIT_FORMS) {
      for (let k = 0; k < 10; k++) {
        const { case: c, target } = editCase(rng, form);
        expect(c.instruction.split(" ")[0]).toBe({ recolor: "make", remove: "remove", add: "add", move: "move" }[form]);
        expect(scoreEdit(c, detect(render(target, 64), 64)), c.instruction).toBe(1);
        expect(scoreEdit(c, detect(render(c.scene, 64), 64)), c.instruction).toBe(0);
      }
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
    expect(a).toHaveLength(32);
    expect(generateCases(4, 9)).toEqual(a);
    expect(generateCases(4, 10)).not.toEqual(a);
    expect(parseCases(formatCases(a))).toEqual(a);
    expect(() => generateCases(0, 1)).toThrow(/nPerCategory/);
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
  ];

  it("accepts good lines and skips blank ones", () => {
    expect(parseCases(`${good}\n\n${good}\r\n`, "x.jsonl")).toHaveLength(2);
  });

  it.each(bad)("names the line and field for %s", (line, pattern) => {
    expect(() => parseCases(`${good}\n${line}`, "x.jsonl")).toThrow(pattern);
  });
});
