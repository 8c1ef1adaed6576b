// ShapesEval scoring (docs/shapesworld.md sections 3 and 5). Mirrors the scorers in
// models/toolkit/shapes/score.py; test/fixtures/shapes-scored.json pins both to the same numbers.
import type { Case, EditCase, ExpectObject, GenerateCase, UnderstandCase } from "./cases.js";
import { COUNT_WORDS, inRegion, relationHolds, type Color, type Placed, type SceneObject, type Shape } from "./world.js";

/** GenEval's six categories: generation `overall` is their mean, as GenEval reports it. */
export const GENEVAL_CATEGORIES = ["single_object", "two_object", "counting", "colors", "position", "color_attr"] as const;
/** ShapesEval adds "region": one object at a named place ("a red circle in the top left"). */
export const GEN_CATEGORIES = [...GENEVAL_CATEGORIES, "region"] as const;
export type Category = (typeof GEN_CATEGORIES)[number];
export const EDIT_FORMS = ["recolor", "remove", "add", "move"] as const;
export type EditForm = (typeof EDIT_FORMS)[number];
/** Centre distance (fraction of the side) allowed for an object the edit did not place. */
export const EDIT_TOLERANCE = 0.08;
/** The edit CFG negative; as a case (target = source) it measures how faithfully a model copies. */
export const REPEAT_INSTRUCTION = "Repeat this image.";

/** What the scorers look at: detector output, or a scene (a perfect detector's output). */
export interface Judged extends Placed {
  shape: Shape | "unknown";
  color: Color;
}

/**
 * Backtracking one-to-one assignment of `n` expected items to detected ones. `ok(k, d)` filters
 * candidates for expected item k; `done(assign)` accepts a full assignment. Scenes hold at most
 * a handful of objects, so exhaustive search is cheap and, unlike greedy matching, never misses.
 */
function assign(
  n: number, detected: readonly Judged[], ok: (k: number, d: Judged) => boolean,
  done: (assignment: readonly number[]) => boolean,
): boolean {
  const acc: number[] = [];
  const used = new Set<number>();
  const step = (): boolean => {
    if (acc.length === n) return done(acc);
    const k = acc.length;
    for (let j = 0; j < detected.length; j++) {
      if (used.has(j) || !ok(k, detected[j] as Judged)) continue;
      used.add(j);
      acc.push(j);
      const found = step();
      acc.pop();
      used.delete(j);
      if (found) return true;
    }
    return false;
  };
  return step();
}

function attrsMatch(e: { shape: Shape; color?: Color }, d: Judged): boolean {
  return d.shape === e.shape && (e.color === undefined || d.color === e.color);
}

/** 1 when the detected scene satisfies the generate case, else 0. */
export function scoreGenerate(c: GenerateCase, detected: readonly Judged[]): number {
  const { count, objects = [], relations = [] } = c.expect;
  if (count !== undefined && detected.filter((d) => attrsMatch(count, d)).length !== count.n) return 0;
  const found = assign(
    objects.length, detected,
    (k, d) => {
      const e = objects[k] as ExpectObject;
      return attrsMatch(e, d) && (e.regions ?? []).every((r) => inRegion(d, r));
    },
    (a) => relations.every((r) => relationHolds(detected[a[r.a] as number] as Judged, r.rel, detected[a[r.b] as number] as Judged)),
  );
  return found ? 1 : 0;
}

function normalize(answer: string): string {
  let a = answer.trim().toLowerCase();
  if (a.endsWith(".")) a = a.slice(0, -1);
  return a.trim();
}

/** Exact match after lower-casing and trimming a final period; a digit counts as a number. */
export function scoreUnderstand(c: UnderstandCase, answer: string): number {
  if (typeof answer !== "string") throw new Error(`answer: expected a string, got ${typeof answer}`);
  let got = normalize(answer);
  if (/^[0-9]+$/.test(got)) {
    const n = Number(got);
    if (n >= 1 && n <= COUNT_WORDS.length) got = COUNT_WORDS[n - 1] as string;
  }
  return got === normalize(c.answer) ? 1 : 0;
}

/** 1 when the detected result equals the expected scene (same objects, placed right), else 0. */
export function scoreEdit(c: EditCase, detected: readonly Judged[]): number {
  if (detected.length !== c.expect.length) return 0;
  const found = assign(c.expect.length, detected, (k, d) => {
    const e = c.expect[k] as EditCase["expect"][number];
    if (d.shape !== e.shape || d.color !== e.color) return false;
    return "region" in e ? inRegion(d, e.region) : near(e, d);
  }, () => true);
  return found ? 1 : 0;
}

// Squared distance, not Math.hypot, whose last-bit rounding differs from Python's: a boundary
// case must score the same in both languages.
function near(e: Placed, d: Placed): boolean {
  const dx = d.cx - e.cx;
  const dy = d.cy - e.cy;
  return dx * dx + dy * dy <= EDIT_TOLERANCE * EDIT_TOLERANCE;
}

const EDIT_VERBS: Record<string, EditForm> = { make: "recolor", remove: "remove", add: "add", move: "move" };
const trimPeriods = (s: string): string => s.replace(/\.+$/, "");

/**
 * recolor / remove / add / move from the instruction's verb; "repeat" for "Repeat this image.";
 * "other" for anything else (cases from a file may say anything).
 */
export function editForm(c: EditCase): EditForm | "repeat" | "other" {
  // trim() and \s agree with Python's strip() and split() on every whitespace an instruction
  // plausibly holds (they differ only on U+FEFF and the U+001C..U+001F separators).
  const instr = c.instruction.trim().toLowerCase();
  if (trimPeriods(instr) === trimPeriods(REPEAT_INSTRUCTION.toLowerCase())) return "repeat";
  const first = instr.split(/\s+/)[0] ?? "";
  return Object.hasOwn(EDIT_VERBS, first) ? (EDIT_VERBS[first] as EditForm) : "other";
}

/**
 * Of the source objects the edit does not touch (expected unchanged: same shape, colour and
 * place), the fraction found in the result: same shape and colour, centre within the tolerance.
 * One to one, greedily in expect order (a partial credit, unlike scoreEdit's all-or-nothing).
 * null when the edit touches every object.
 */
export function scoreKept(c: EditCase, detected: readonly Judged[]): number | null {
  const keep = c.expect.filter((e): e is SceneObject => !("region" in e)
    && c.scene.some((o) => o.shape === e.shape && o.color === e.color && o.cx === e.cx && o.cy === e.cy));
  if (keep.length === 0) return null;
  const left = [...detected];
  let hit = 0;
  for (const e of keep) {
    const j = left.findIndex((d) => d.shape === e.shape && d.color === e.color && near(e, d));
    if (j < 0) continue;
    hit++;
    left.splice(j, 1);
  }
  return hit / keep.length;
}

/** Dispatch: `output` is the detected objects (generate, edit) or the answer (understand). */
export function scoreCase(c: Case, output: readonly Judged[] | string): number {
  switch (c.task) {
    case "generate":
    case "edit":
      if (typeof output === "string") throw new Error(`scoreCase: a ${c.task} case is scored on detected objects, got a string`);
      return c.task === "generate" ? scoreGenerate(c, output) : scoreEdit(c, output);
    case "understand":
      if (typeof output !== "string") throw new Error("scoreCase: an understand case is scored on an answer string");
      return scoreUnderstand(c, output);
  }
}

export interface CaseResult {
  task: Case["task"];
  category?: Category;
  /** Fraction of this case's samples judged correct (GenEval samples each prompt 4 times). */
  score: number;
  /** Edits: editForm of the instruction. */
  form?: ReturnType<typeof editForm>;
  /** Edits, when measured: scoreKept of the result. */
  kept?: number;
}

// A plain left-to-right sum, exactly as the Python toolkit does it, so summaries agree bit for bit.
function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let total = 0;
  for (const x of xs) total += x;
  return total / xs.length;
}

/** One summarize() entry for a case judged on several samples; edits carry their form and kept. */
export function caseResult(c: Case, scores: readonly number[], kept?: number | null): CaseResult {
  if (scores.length === 0) throw new Error("caseResult: no scores");
  const score = mean(scores) as number;
  // Key order as in Python's case_result, so both print the same JSON.
  if (c.task === "generate") return { task: c.task, score, category: c.category };
  if (c.task === "understand") return { task: c.task, score };
  const r: CaseResult = { task: c.task, score, form: editForm(c) };
  if (kept !== undefined && kept !== null) r.kept = kept;
  return r;
}

export type GenerationSummary = Record<Category | "overall", number | null>;
export interface Summary {
  generation: GenerationSummary | null;
  understanding: number | null;
  /** Real edits only (not "Repeat this image."). */
  editing: number | null;
  /** Per form over the real edits; null when there are none (a form without cases is null). */
  editing_forms: Record<EditForm, number | null> | null;
  /** Mean scoreKept over the real edits that have one. */
  kept: number | null;
  /** Mean score of the "Repeat this image." cases: the fraction reproduced. */
  repeat: number | null;
  cases: number;
}

const scoresOf = (rs: readonly CaseResult[]): number[] => rs.map((r) => r.score);

/**
 * The `unipic eval --json` object. A category score is the mean of its cases; `overall` the mean
 * of the GenEval categories present (not "region", ShapesEval's own); a task or category absent
 * from the results is null. Keys in the order Python's summarize writes them.
 */
export function summarize(results: readonly CaseResult[]): Summary {
  const gen = results.filter((r) => r.task === "generate");
  let generation: GenerationSummary | null = null;
  if (gen.length > 0) {
    generation = Object.fromEntries(GEN_CATEGORIES.map((cat) => [cat, mean(scoresOf(gen.filter((r) => r.category === cat)))])) as GenerationSummary;
    const g = generation;
    generation.overall = mean(GENEVAL_CATEGORIES.flatMap((cat) => (g[cat] === null ? [] : [g[cat]])));
  }
  const edits = results.filter((r) => r.task === "edit" && r.form !== "repeat");
  const forms = edits.length === 0 ? null
    : Object.fromEntries(EDIT_FORMS.map((f) => [f, mean(scoresOf(edits.filter((r) => r.form === f)))])) as Record<EditForm, number | null>;
  return {
    generation,
    understanding: mean(scoresOf(results.filter((r) => r.task === "understand"))),
    editing: mean(scoresOf(edits)),
    editing_forms: forms,
    kept: mean(edits.flatMap((r) => (r.kept === undefined || r.kept === null ? [] : [r.kept]))),
    repeat: mean(scoresOf(results.filter((r) => r.task === "edit" && r.form === "repeat"))),
    cases: results.length,
  };
}
