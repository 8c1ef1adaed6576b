// Cross-language pin: the Python toolkit (models/toolkit/shapes/fixtures.py, written by
// `python -m toolkit.shapes fixtures`) wrote these cases, images, detections and scores; the TS
// detector and scorer must reproduce them exactly.
import { describe, expect, it } from "vitest";
import { parseCases, type EditCase, type UnderstandCase } from "../../src/shapes/cases.js";
import { detect, type DetectedObject } from "../../src/shapes/detect.js";
import {
  GEN_CATEGORIES, caseResult, editForm, scoreCase, scoreKept, scoreUnderstand, summarize, type CaseResult, type Summary,
} from "../../src/shapes/score.js";
import { render, type SceneObject } from "../../src/shapes/world.js";
import { decodePng, readFixture } from "./helpers.js";

interface Scored {
  items: {
    name: string; size: number; png: string; scene?: SceneObject[]; detected: DetectedObject[];
    scores: [number, number][]; kept: [number, number | null][];
  }[];
  answers: [number, string, number][];
  /** Per case: the sample scores and kept fraction that case_result turned into summaries[0].results. */
  samples: [number[], number | null][];
  summaries: { results: CaseResult[]; summary: Summary }[];
}

const cases = parseCases(readFixture("shapes-cases.jsonl").toString(), "shapes-cases.jsonl");
const scored = JSON.parse(readFixture("shapes-scored.json").toString()) as Scored;

describe("Python/TypeScript pin", () => {
  it("covers every task, generation category and form", () => {
    expect(cases.length).toBeGreaterThanOrEqual(36);
    const cats = new Set(cases.flatMap((c) => (c.task === "generate" ? [c.category] : [])));
    expect(cats).toEqual(new Set(GEN_CATEGORIES));
    const und = cases.flatMap((c) => (c.task === "understand" ? [c.question.split(" ").slice(0, 2).join(" ")] : []));
    expect(new Set(und)).toEqual(new Set(["what color", "how many", "what shape", "is there", "where is"]));
    const edits = cases.flatMap((c) => (c.task === "edit" ? [editForm(c)] : []));
    expect(new Set(edits)).toEqual(new Set(["recolor", "remove", "add", "move", "repeat"]));
    expect(scored.items.length).toBeGreaterThan(40);
    // Partial credit and "nothing to keep" are both pinned, not only 0 and 1.
    const kept = new Set(scored.items.flatMap((it) => it.kept.map(([, v]) => v)));
    for (const v of [null, 0, 0.5, 1]) expect(kept.has(v), String(v)).toBe(true);
  });

  it("detects the same objects and gives the same scores on every fixture image", async () => {
    let positives = 0;
    let rendered = 0;
    for (const item of scored.items) {
      const { rgb, size } = await decodePng(Buffer.from(item.png, "base64"));
      expect(size).toBe(item.size);
      if (item.scene) {
        // Python rendered this PNG from the scene: the TS renderer must agree on every byte.
        expect(Buffer.from(render(item.scene, size)).equals(Buffer.from(rgb)), item.name).toBe(true);
        rendered++;
      }
      const det = detect(rgb, size);
      expect(det, item.name).toEqual(item.detected);
      const mine = item.scores.map(([k]) => [k, scoreCase(cases[k]!, det)]);
      expect(mine, item.name).toEqual(item.scores);
      expect(item.kept.map(([k]) => [k, scoreKept(cases[k] as EditCase, det)]), item.name).toEqual(item.kept);
      positives += item.scores.filter(([, s]) => s === 1).length;
    }
    expect(positives).toBeGreaterThan(30); // the pin is not all zeros
    expect(rendered).toBeGreaterThan(30);
  });

  it("scores understanding answers the same", () => {
    for (const [k, answer, want] of scored.answers) {
      expect(scoreUnderstand(cases[k] as UnderstandCase, answer), `${k}: ${JSON.stringify(answer)}`).toBe(want);
    }
    expect(new Set(scored.answers.map(([, , s]) => s))).toEqual(new Set([0, 1]));
  });

  it("turns samples into the same per-case results", () => {
    const mine = cases.map((c, k) => caseResult(c, scored.samples[k]![0], scored.samples[k]![1]));
    // Same JSON text: same keys in the same order, same numbers.
    expect(JSON.stringify(mine)).toBe(JSON.stringify(scored.summaries[0]!.results));
  });

  it("summarizes to the same JSON, bit for bit", () => {
    expect(scored.summaries.length).toBeGreaterThanOrEqual(8);
    for (const { results, summary } of scored.summaries) {
      expect(summarize(results)).toEqual(summary);
      // Key order too: Python's summarize and `unipic eval --json` print the same text.
      expect(JSON.stringify(summarize(results))).toBe(JSON.stringify(summary));
    }
  });
});
