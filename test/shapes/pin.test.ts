// Cross-language pin: the Python toolkit (models/toolkit/shapes.py `fixtures`) wrote these
// cases, images, detections and scores; the TS detector and scorer must reproduce them exactly.
import { describe, expect, it } from "vitest";
import { parseCases, type UnderstandCase } from "../../src/shapes/cases.js";
import { detect, type DetectedObject } from "../../src/shapes/detect.js";
import { scoreCase, scoreUnderstand, summarize, type CaseResult, type Summary } from "../../src/shapes/score.js";
import { render, type SceneObject } from "../../src/shapes/world.js";
import { decodePng, readFixture } from "./helpers.js";

interface Scored {
  items: { name: string; size: number; png: string; scene?: SceneObject[]; detected: DetectedObject[]; scores: [number, number][] }[];
  answers: [number, string, number][];
  summaries: { results: CaseResult[]; summary: Summary }[];
}

const cases = parseCases(readFixture("shapes-cases.jsonl").toString(), "shapes-cases.jsonl");
const scored = JSON.parse(readFixture("shapes-scored.json").toString()) as Scored;

describe("Python/TypeScript pin", () => {
  it("covers every task, generation category and form", () => {
    expect(cases.length).toBeGreaterThanOrEqual(36);
    const cats = new Set(cases.flatMap((c) => (c.task === "generate" ? [c.category] : [])));
    expect(cats.size).toBe(6);
    const und = cases.flatMap((c) => (c.task === "understand" ? [c.question.split(" ").slice(0, 2).join(" ")] : []));
    expect(new Set(und)).toEqual(new Set(["what color", "how many", "what shape", "is there", "where is"]));
    const edits = cases.flatMap((c) => (c.task === "edit" ? [c.instruction.split(" ")[0]] : []));
    expect(new Set(edits)).toEqual(new Set(["make", "remove", "add", "move"]));
    expect(scored.items.length).toBeGreaterThan(40);
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

  it("summarizes to the same JSON, bit for bit", () => {
    for (const { results, summary } of scored.summaries) expect(summarize(results)).toEqual(summary);
  });
});
