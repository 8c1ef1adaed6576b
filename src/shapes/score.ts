// ShapesEval scoring (shared/docs/shapes-world.md sections 3 and 5). Mirrors the scorers in
// models/toolkit/shapes.py; test/fixtures/shapes-scored.json pins both to the same numbers.
import type { Case, EditCase, ExpectObject, GenerateCase, UnderstandCase } from "./cases.js";
import { COUNT_WORDS, inRegion, relationHolds, type Color, type Placed, type Shape } from "./world.js";

export const GEN_CATEGORIES = ["single_object", "two_object", "counting", "colors", "position", "color_attr"] as const;
export type Category = (typeof GEN_CATEGORIES)[number];
/** Centre distance (fraction of the side) allowed for an object the edit did not place. */
export const EDIT_TOLERANCE = 0.08;

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
    (k, d) => attrsMatch(objects[k] as ExpectObject, d),
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
  const tol2 = EDIT_TOLERANCE * EDIT_TOLERANCE;
  const found = assign(c.expect.length, detected, (k, d) => {
    const e = c.expect[k] as EditCase["expect"][number];
    if (d.shape !== e.shape || d.color !== e.color) return false;
    if ("region" in e) return inRegion(d, e.region);
    // Squared distance, not Math.hypot, whose last-bit rounding differs from Python's.
    const dx = d.cx - e.cx;
    const dy = d.cy - e.cy;
    return dx * dx + dy * dy <= tol2;
  }, () => true);
  return found ? 1 : 0;
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
}

// A plain left-to-right sum, exactly as the Python toolkit does it, so summaries agree bit for bit.
function mean(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  let total = 0;
  for (const x of xs) total += x;
  return total / xs.length;
}

export function caseResult(c: Case, scores: readonly number[]): CaseResult {
  if (scores.length === 0) throw new Error("caseResult: no scores");
  const score = mean(scores) as number;
  return c.task === "generate" ? { task: c.task, score, category: c.category } : { task: c.task, score };
}

export type GenerationSummary = Record<Category | "overall", number | null>;
export interface Summary {
  generation: GenerationSummary | null;
  understanding: number | null;
  editing: number | null;
  cases: number;
}

/**
 * The `unipic eval --json` object. A category score is the mean of its cases, `overall` the
 * mean of the categories present; a task or category absent from the results is null.
 */
export function summarize(results: readonly CaseResult[]): Summary {
  const gen = results.filter((r) => r.task === "generate");
  let generation: GenerationSummary | null = null;
  if (gen.length > 0) {
    const per = GEN_CATEGORIES.map((cat) => mean(gen.filter((r) => r.category === cat).map((r) => r.score)));
    generation = Object.fromEntries(GEN_CATEGORIES.map((cat, i) => [cat, per[i] ?? null])) as GenerationSummary;
    generation.overall = mean(per.filter((v): v is number => v !== null));
  }
  return {
    generation,
    understanding: mean(results.filter((r) => r.task === "understand").map((r) => r.score)),
    editing: mean(results.filter((r) => r.task === "edit").map((r) => r.score)),
    cases: results.length,
  };
}
