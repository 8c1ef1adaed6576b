// ShapesEval cases: the JSONL format of docs/shapesworld.md section 5, its validation
// (anyone can bring their own case file, so errors name the line and the field), and seeded
// random generation of fresh cases in exactly the prompt forms of its section 3. Mirrors the
// generators in models/toolkit/shapes/cases.py (same forms and rules; the random streams differ
// by design).
import { Rng } from "./rng.js";
import { EDIT_FORMS, GEN_CATEGORIES, REPEAT_INSTRUCTION, scoreGenerate, type Category, type EditForm } from "./score.js";
import {
  COLORS, MAX_OBJECTS, REGIONS, RELATIONS, SHAPES, countWord, inRegion, place, regionOf, sampleScene,
  type Color, type Region, type Relation, type SceneObject, type Shape, type Spec,
} from "./world.js";

export interface ExpectObject {
  shape: Shape;
  color?: Color;
  /** Region words that must all hold for the object ("region" prompts: ["top", "left"]). */
  regions?: Region[];
}
export interface GenerateCase {
  task: "generate";
  category: Category;
  prompt: string;
  expect: {
    objects?: ExpectObject[];
    count?: { shape: Shape; color?: Color; n: number };
    /** Indices into `objects`. */
    relations?: { a: number; rel: Relation; b: number }[];
  };
}
export interface UnderstandCase {
  task: "understand";
  scene: SceneObject[];
  question: string;
  answer: string;
}
/** An object the edit placed (add, move) is expected by region, not by coordinates. */
export interface PlacedExpect {
  shape: Shape;
  color: Color;
  region: Region;
}
export interface EditCase {
  task: "edit";
  scene: SceneObject[];
  instruction: string;
  expect: (SceneObject | PlacedExpect)[];
}
export type Case = GenerateCase | UnderstandCase | EditCase;

export const UNDERSTAND_FORMS = ["color", "count", "shape", "exists", "where"] as const;
export type UnderstandForm = (typeof UNDERSTAND_FORMS)[number];
// Defined with the scorer (editForm reads instructions back into forms); re-exported for callers.
export { EDIT_FORMS, type EditForm };

/**
 * Place phrases of "region" prompts and the region words each one asserts, in the order of
 * Python's layouts.REGION_PHRASES (the generators draw from this list by index).
 */
export const REGION_PHRASES: readonly (readonly [string, readonly Region[]])[] = [
  ["on the left", ["left"]],
  ["on the right", ["right"]],
  ["at the top", ["top"]],
  ["at the bottom", ["bottom"]],
  ["in the center", ["center"]],
  ["in the top left", ["top", "left"]],
  ["in the top right", ["top", "right"]],
  ["in the bottom left", ["bottom", "left"]],
  ["in the bottom right", ["bottom", "right"]],
];

// ---------------------------------------------------------------------------------------------
// Validation

class CaseError extends Error {}

const fail = (field: string, msg: string): never => {
  throw new CaseError(`${field}: ${msg}`);
};
const show = (v: unknown): string => (v === undefined ? "nothing" : JSON.stringify(v));
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function needChoice(v: unknown, options: readonly string[], field: string): void {
  if (typeof v !== "string" || !options.includes(v)) fail(field, `expected one of ${options.join(", ")}, got ${show(v)}`);
}
function needString(v: unknown, field: string): void {
  if (typeof v !== "string" || v === "") fail(field, `expected a non-empty string, got ${show(v)}`);
}
function needIndex(v: unknown, lo: number, hi: number, field: string, what: string): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) fail(field, `expected ${what} (${lo}..${hi}), got ${show(v)}`);
}

function checkObject(o: unknown, field: string): void {
  if (!isObj(o)) return fail(field, `expected an object, got ${show(o)}`);
  needChoice(o.shape, SHAPES, `${field}.shape`);
  needChoice(o.color, COLORS, `${field}.color`);
  for (const k of ["cx", "cy", "s"]) {
    const v = o[k];
    if (typeof v !== "number" || !Number.isFinite(v)) fail(`${field}.${k}`, `expected a finite number, got ${show(v)}`);
  }
}

function checkScene(scene: unknown, field: string, opts: { regions?: boolean; empty?: boolean } = {}): void {
  if (!Array.isArray(scene)) return fail(field, `expected a list of objects, got ${show(scene)}`);
  if (!opts.empty && scene.length === 0) fail(field, "expected at least one object");
  scene.forEach((o: unknown, i) => {
    const f = `${field}[${i}]`;
    if (opts.regions && isObj(o) && "region" in o) {
      needChoice(o.shape, SHAPES, `${f}.shape`);
      needChoice(o.color, COLORS, `${f}.color`);
      needChoice(o.region, REGIONS, `${f}.region`);
    } else {
      checkObject(o, f);
    }
  });
}

/** Throws an Error naming the offending field (e.g. "case.expect.count.n: ...") unless valid. */
export function validateCase(c: unknown, where = "case"): Case {
  if (!isObj(c)) return fail(where, `expected a JSON object, got ${show(c)}`);
  needChoice(c.task, ["generate", "understand", "edit"], `${where}.task`);
  if (c.task === "generate") {
    needChoice(c.category, GEN_CATEGORIES, `${where}.category`);
    needString(c.prompt, `${where}.prompt`);
    const e = c.expect;
    if (!isObj(e)) return fail(`${where}.expect`, `expected an object, got ${show(e)}`);
    if (!("objects" in e) && !("count" in e)) fail(`${where}.expect`, "needs 'objects' or 'count'");
    if ("count" in e) {
      const n = e.count;
      if (!isObj(n)) return fail(`${where}.expect.count`, `expected an object, got ${show(n)}`);
      needChoice(n.shape, SHAPES, `${where}.expect.count.shape`);
      if ("color" in n) needChoice(n.color, COLORS, `${where}.expect.count.color`);
      needIndex(n.n, 0, MAX_OBJECTS, `${where}.expect.count.n`, "an integer");
    }
    const objs = e.objects ?? [];
    if (!Array.isArray(objs)) return fail(`${where}.expect.objects`, `expected a list, got ${show(objs)}`);
    objs.forEach((o: unknown, i) => {
      const f = `${where}.expect.objects[${i}]`;
      if (!isObj(o)) return fail(f, `expected an object, got ${show(o)}`);
      needChoice(o.shape, SHAPES, `${f}.shape`);
      if ("color" in o) needChoice(o.color, COLORS, `${f}.color`);
      if ("regions" in o) {
        const rs = o.regions;
        if (!Array.isArray(rs) || rs.length === 0) return fail(`${f}.regions`, `expected a non-empty list of region words, got ${show(rs)}`);
        rs.forEach((r: unknown, j) => needChoice(r, REGIONS, `${f}.regions[${j}]`));
      }
    });
    const rels = e.relations ?? [];
    if (!Array.isArray(rels)) return fail(`${where}.expect.relations`, `expected a list, got ${show(rels)}`);
    rels.forEach((r: unknown, i) => {
      const f = `${where}.expect.relations[${i}]`;
      if (!isObj(r)) return fail(f, `expected an object, got ${show(r)}`);
      needChoice(r.rel, RELATIONS, `${f}.rel`);
      for (const k of ["a", "b"]) needIndex(r[k], 0, objs.length - 1, `${f}.${k}`, "an index into expect.objects");
    });
  } else if (c.task === "understand") {
    checkScene(c.scene, `${where}.scene`);
    needString(c.question, `${where}.question`);
    needString(c.answer, `${where}.answer`);
  } else {
    checkScene(c.scene, `${where}.scene`);
    needString(c.instruction, `${where}.instruction`);
    checkScene(c.expect, `${where}.expect`, { regions: true, empty: true });
  }
  return c as unknown as Case;
}

/** Parse JSONL cases (blank lines skipped); errors read "cases.jsonl:3: case.expect.count.n: ...". */
export function parseCases(text: string, source = "cases"): Case[] {
  const out: Case[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "") return;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      throw new Error(`${source}:${i + 1}: invalid JSON: ${(e as Error).message}`);
    }
    try {
      out.push(validateCase(obj));
    } catch (e) {
      if (e instanceof CaseError) throw new Error(`${source}:${i + 1}: ${e.message}`);
      throw e;
    }
  });
  return out;
}

export function formatCases(cases: readonly Case[]): string {
  return cases.map((c) => JSON.stringify(c) + "\n").join("");
}

// ---------------------------------------------------------------------------------------------
// Generation. Each generator returns the case and a concrete scene satisfying it (what a
// perfect model would draw), so the same code serves tests and training-data previews.

export function genCase(rng: Rng, category: Category): { case: GenerateCase; target: SceneObject[] } {
  const [s0, s1] = rng.shuffled(SHAPES) as [Shape, Shape, Shape];
  const [c0, c1] = rng.shuffled(COLORS) as [Color, Color];
  let prompt: string;
  let expect: GenerateCase["expect"];
  let specs: Spec[];
  switch (category) {
    case "single_object":
      [prompt, expect, specs] = [`a ${s0}`, { objects: [{ shape: s0 }] }, [[s0, null]]];
      break;
    case "two_object":
      [prompt, expect] = [`a ${s0} and a ${s1}`, { objects: [{ shape: s0 }, { shape: s1 }] }];
      specs = [[s0, null], [s1, null]];
      break;
    case "counting": {
      const n = rng.int(2, MAX_OBJECTS); // "one circles" is not English; GenEval counts from two too
      [prompt, expect] = [`${countWord(n)} ${s0}s`, { count: { shape: s0, n } }];
      specs = Array.from({ length: n }, (): Spec => [s0, null]);
      break;
    }
    case "colors":
      [prompt, expect, specs] = [`a ${c0} ${s0}`, { objects: [{ shape: s0, color: c0 }] }, [[s0, c0]]];
      break;
    case "position": {
      const rel = rng.choice(RELATIONS);
      prompt = `a ${s0} ${rel} a ${s1}`;
      expect = { objects: [{ shape: s0 }, { shape: s1 }], relations: [{ a: 0, rel, b: 1 }] };
      specs = [[s0, null], [s1, null]];
      break;
    }
    case "color_attr":
      prompt = `a ${c0} ${s0} and a ${c1} ${s1}`;
      expect = { objects: [{ shape: s0, color: c0 }, { shape: s1, color: c1 }] };
      specs = [[s0, c0], [s1, c1]];
      break;
    case "region": {
      const [phrase, regions] = rng.choice(REGION_PHRASES);
      prompt = `a ${c0} ${s0} ${phrase}`;
      expect = { objects: [{ shape: s0, color: c0, regions: [...regions] }] };
      specs = [[s0, c0]];
      break;
    }
  }
  const c: GenerateCase = { task: "generate", category, prompt, expect };
  for (;;) {
    const target = sampleScene(rng, specs);
    if (scoreGenerate(c, target) === 1) return { case: c, target };
  }
}

const matching = (scene: readonly SceneObject[], p: Partial<SceneObject>): number[] =>
  scene.flatMap((o, i) => (Object.entries(p).every(([k, v]) => o[k as keyof SceneObject] === v) ? [i] : []));

export function undCase(rng: Rng, form: UnderstandForm): UnderstandCase {
  for (;;) {
    const scene = sampleScene(rng);
    const o = rng.choice(scene);
    let qa: [string, string] | null = null;
    if (form === "color" && matching(scene, { shape: o.shape }).length === 1) {
      qa = [`what color is the ${o.shape}?`, o.color];
    } else if (form === "count") {
      qa = [`how many ${o.shape}s are there?`, countWord(matching(scene, { shape: o.shape }).length)];
    } else if (form === "shape" && matching(scene, { color: o.color }).length === 1) {
      qa = [`what shape is the ${o.color} object?`, o.shape];
    } else if (form === "exists") {
      if (rng.next() < 0.5) {
        qa = [`is there a ${o.color} ${o.shape}?`, "yes"];
      } else {
        const absent = COLORS.flatMap((c) => SHAPES.filter((s) => matching(scene, { color: c, shape: s }).length === 0).map((s) => [c, s]));
        const [c, s] = rng.choice(absent);
        qa = [`is there a ${c} ${s}?`, "no"];
      }
    } else if (form === "where" && matching(scene, { color: o.color, shape: o.shape }).length === 1) {
      const r = regionOf(o); // only objects in exactly one region have a single right answer
      if (r !== null) qa = [`where is the ${o.color} ${o.shape}?`, r];
    }
    if (qa) return { task: "understand", scene, question: qa[0], answer: qa[1] };
  }
}

export function editCase(rng: Rng, form: EditForm): { case: EditCase; target: SceneObject[] } {
  for (;;) {
    const scene = sampleScene(rng);
    const i = rng.int(0, scene.length - 1);
    const o = scene[i] as SceneObject;
    const target: SceneObject[] = scene.map((x) => ({ ...x }));
    const expect: EditCase["expect"] = scene.map((x) => ({ ...x }));
    const unique = matching(scene, { shape: o.shape, color: o.color }).length === 1;
    let instruction: string;
    if (form === "recolor") {
      if (matching(scene, { shape: o.shape }).length !== 1) continue;
      const color = rng.choice(COLORS.filter((c) => c !== o.color));
      instruction = `make the ${o.shape} ${color}`;
      (target[i] as SceneObject).color = color;
      (expect[i] as SceneObject).color = color;
    } else if (form === "remove") {
      if (!unique) continue;
      instruction = `remove the ${o.color} ${o.shape}`;
      target.splice(i, 1);
      expect.splice(i, 1);
    } else if (form === "add") {
      if (scene.length >= MAX_OBJECTS) continue;
      const [shape, color, region] = [rng.choice(SHAPES), rng.choice(COLORS), rng.choice(REGIONS)];
      const added = place(rng, shape, color, scene, region);
      if (added === null) continue;
      instruction = `add a ${color} ${shape} on the ${region}`;
      target.push(added);
      expect.push({ shape, color, region });
    } else {
      if (!unique) continue;
      const region = rng.choice(REGIONS.filter((r) => !inRegion(o, r)));
      const moved = place(rng, o.shape, o.color, scene.filter((_, k) => k !== i), region);
      if (moved === null) continue;
      instruction = `move the ${o.color} ${o.shape} to the ${region}`;
      target[i] = moved;
      expect[i] = { shape: o.shape, color: o.color, region };
    }
    return { case: { task: "edit", scene, instruction, expect }, target };
  }
}

/** "Repeat this image." on a random scene: the result must equal the source (target = scene). */
export function repeatCase(rng: Rng): { case: EditCase; target: SceneObject[] } {
  const scene = sampleScene(rng);
  return {
    case: { task: "edit", scene, instruction: REPEAT_INSTRUCTION, expect: scene.map((o) => ({ ...o })) },
    target: scene.map((o) => ({ ...o })),
  };
}

/**
 * Fresh random cases from a seed: n for each generation category, n understanding cases
 * (cycling through the five forms), n edit cases (cycling through the four forms), then
 * `repeats` "Repeat this image." edits: the order of Python's evaluate.build_cases.
 */
export function generateCases(nPerCategory: number, seed: number, repeats = 0, counts: { questions?: number; edits?: number } = {}): Case[] {
  // 0 is allowed (an edit-only or understanding-only evaluation), as in Python's build_cases.
  if (!Number.isInteger(nPerCategory) || nPerCategory < 0) throw new Error(`nPerCategory must be an integer >= 0, got ${nPerCategory}`);
  if (!Number.isInteger(repeats) || repeats < 0) throw new Error(`repeats must be an integer >= 0, got ${repeats}`);
  // Questions and edits default to nPerCategory; the full evaluation wants 300 of each
  // beside 50 prompts per category.
  const questions = counts.questions ?? nPerCategory;
  const edits = counts.edits ?? nPerCategory;
  for (const [name, v] of [["questions", questions], ["edits", edits]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name} must be an integer >= 0, got ${v}`);
  }
  if (nPerCategory + questions + edits + repeats === 0) throw new Error("no cases: every count is 0");
  const rng = new Rng(seed);
  const out: Case[] = [];
  for (const cat of GEN_CATEGORIES) for (let k = 0; k < nPerCategory; k++) out.push(genCase(rng, cat).case);
  for (let k = 0; k < questions; k++) out.push(undCase(rng, UNDERSTAND_FORMS[k % 5] as UnderstandForm));
  for (let k = 0; k < edits; k++) out.push(editCase(rng, EDIT_FORMS[k % 4] as EditForm).case);
  for (let k = 0; k < repeats; k++) out.push(repeatCase(rng).case);
  return out;
}
