/** `unipic generate | edit | understand | eval | bench` as a user runs them, on unipic-tiny. */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/process.js";

let dir: string;
const FAST = ["--steps", "3", "--diffusion-steps", "4"];
const env = { ENGINE_THREADS: "1" };

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "unipic-cli-engine-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("unipic engine commands", () => {
  it("generate writes a PNG, reproducibly for a seed; edit and understand read it", async () => {
    const a = path.join(dir, "a.png");
    const b = path.join(dir, "b.png");
    const g1 = await runCli(["generate", "a red circle", "-o", a, "--seed", "5", ...FAST], env);
    expect(g1.code, g1.stderr).toBe(0);
    expect(g1.stdout).toContain("seed 5");
    expect(g1.stderr).toMatch(/generate \[#+\.*\] \d\/3/); // the progress bar
    await runCli(["generate", "a red circle", "-o", b, "--seed", "5", ...FAST], env);
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
    expect(await sharp(a).metadata()).toMatchObject({ width: 64, height: 64, format: "png" });

    const edited = path.join(dir, "edited.png");
    const e = await runCli(["edit", a, "make the circle blue", "-o", edited, "--seed", "1", ...FAST], env);
    expect(e.code, e.stderr).toBe(0);
    expect((await sharp(edited).metadata()).width).toBe(64);

    const u = await runCli(["understand", a, "what color is the circle?", "--max-tokens", "3"], env);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout.trim().length).toBeGreaterThan(0);
  });

  it("eval prints ShapesEval JSON for a case file", async () => {
    const cases = path.join(dir, "cases.jsonl");
    await writeFile(cases, [
      `{"task":"generate","category":"colors","prompt":"a red circle","expect":{"objects":[{"shape":"circle","color":"red"}]}}`,
      `{"task":"understand","scene":[{"shape":"circle","color":"red","cx":0.3,"cy":0.45,"s":0.12}],"question":"what color is the circle?","answer":"red"}`,
      `{"task":"edit","scene":[{"shape":"square","color":"blue","cx":0.6,"cy":0.3,"s":0.11}],"instruction":"make the square green","expect":[{"shape":"square","color":"green","cx":0.6,"cy":0.3,"s":0.11}]}`,
      // An untouched circle: the edit reports "kept" for it.
      `{"task":"edit","scene":[{"shape":"square","color":"blue","cx":0.6,"cy":0.3,"s":0.11},{"shape":"circle","color":"red","cx":0.25,"cy":0.7,"s":0.1}],"instruction":"remove the blue square","expect":[{"shape":"circle","color":"red","cx":0.25,"cy":0.7,"s":0.1}]}`,
      `{"task":"edit","scene":[{"shape":"circle","color":"red","cx":0.25,"cy":0.7,"s":0.1}],"instruction":"Repeat this image.","expect":[{"shape":"circle","color":"red","cx":0.25,"cy":0.7,"s":0.1}]}`,
    ].join("\n"));
    const r = await runCli(["eval", "--cases", cases, "--seeds", "2", "--json", ...FAST], env);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(Object.keys(summary)).toEqual(["generation", "understanding", "editing", "editing_forms", "kept", "repeat", "cases"]);
    expect(summary.cases).toBe(5);
    expect(Object.keys(summary.generation)).toEqual(["single_object", "two_object", "counting", "colors", "position", "color_attr", "region", "overall"]);
    expect(summary.generation.single_object).toBeNull();
    expect(summary.editing_forms.add).toBeNull();
    // Each score is a mean of 0/1 judgements over its cases' samples, so it sits on their grid:
    // colors over 2 samples (--seeds 2), editing over the 2 real edits, the rest over one each
    // (kept: only the removal leaves an object alone). A miscounted sample falls off the grid.
    const grid = (n: number): number[] => Array.from({ length: n + 1 }, (_, k) => k / n);
    const scores: Array<[string, number, number]> = [
      ["colors", summary.generation.colors, 2], ["editing", summary.editing, 2], ["recolor", summary.editing_forms.recolor, 1],
      ["remove", summary.editing_forms.remove, 1], ["kept", summary.kept, 1], ["repeat", summary.repeat, 1],
    ];
    for (const [name, value, samples] of scores) expect(grid(samples), name).toContain(value);
    expect(summary.generation.overall).toBe(summary.generation.colors); // the only GenEval category with cases
    // The committed weights answer colour questions (ShapesEval understanding ~0.9; greedy, so
    // always the same answer): the red circle's colour is right.
    expect(summary.understanding).toBe(1);
  });

  it("eval takes --repeats, --questions and --edits for fresh cases only", async () => {
    const cases = path.join(dir, "one.jsonl");
    await writeFile(cases, `{"task":"generate","category":"colors","prompt":"a red circle","expect":{"objects":[{"shape":"circle","color":"red"}]}}\n`);
    for (const name of ["--repeats", "--questions", "--edits"]) {
      const r = await runCli(["eval", "--cases", cases, name, "2"], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(name);
      const neg = await runCli(["eval", name, "-1"], env);
      expect(neg.code).toBe(1);
      expect(neg.stderr).toContain(name);
    }
  });

  it("eval --n 0 runs no generation prompts, and refuses no cases at all; --results writes each case", async () => {
    const out = path.join(dir, "results.jsonl");
    const r = await runCli(["eval", "--n", "0", "--questions", "1", "--edits", "0", "--repeats", "0", "--case-seed", "3", "--json", "--results", out, ...FAST], env);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.cases).toBe(1);
    expect(summary.generation).toBeNull();
    expect(typeof summary.understanding).toBe("number");
    const lines = (await readFile(out, "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines).toEqual([{ case: 0, task: "understand", score: summary.understanding }]);
    const unwritable = await runCli(["eval", "--n", "0", "--questions", "1", "--edits", "0", "--repeats", "0", "--results", path.join(dir, "no", "such", "dir.jsonl")], env);
    expect(unwritable.code).toBe(1);
    expect(unwritable.stderr).toMatch(/--results.*writ/);
    for (const argv of [["--n", "-1"], ["--n", "0", "--questions", "0", "--edits", "0", "--repeats", "0"]]) {
      const bad = await runCli(["eval", ...argv], env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("--n");
    }
  });

  it("eval refuses a bad case file with the line and field", async () => {
    const cases = path.join(dir, "bad.jsonl");
    await writeFile(cases, `{"task":"generate","category":"colors","prompt":"a red circle","expect":{"objects":[{"shape":"hexagon"}]}}\n`);
    const r = await runCli(["eval", "--cases", cases], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.jsonl:1/);
    expect(r.stderr).toMatch(/shape/);
  });

  it("eval --geneval writes GenEval's folder layout", async () => {
    const meta = path.join(dir, "evaluation_metadata.jsonl");
    await writeFile(meta, `{"tag":"single_object","include":[{"class":"circle","count":1}],"prompt":"a photo of a circle"}\n{"tag":"colors","include":[{"class":"square","count":1,"color":"red"}],"prompt":"a photo of a red square"}\n`);
    const out = path.join(dir, "geneval");
    const r = await runCli(["eval", "--geneval", meta, "--out", out, "--per-prompt", "2", ...FAST], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(out, "00001", "metadata.jsonl"), "utf8")).prompt).toBe("a photo of a red square");
    expect((await sharp(path.join(out, "00000", "samples", "0001.png")).metadata()).width).toBe(64);
  });

  it("bench prints one JSON object per metric", async () => {
    const r = await runCli(["bench", "--json", "--quick", "--no-torch"], env, 580_000);
    expect(r.code, r.stderr).toBe(0);
    const metrics = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { metric: string; value: number });
    expect(metrics.map((m) => m.metric)).toEqual([
      "generate_ms", "preview_overhead", "step_ms_p50", "step_ms_p99", "first_preview_ms", "batch_speedup", "flops_utilisation", "pool_batch_speedup", "preview_latency_ms_p50", "preview_latency_ms_p99", "turns_per_min",
    ]);
    for (const m of metrics) {
      // flops_utilisation needs the manifest's flops table, which exports before issue 13 lack: then null and why
      if (m.metric === "flops_utilisation" && m.value === null) expect((m as { reason?: string }).reason).toMatch(/flops table/);
      else expect(Number.isFinite(m.value), m.metric).toBe(true);
    }
  }, 600_000);
});
