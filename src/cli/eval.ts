/**
 * `unipic eval`: ShapesEval (docs/shapesworld.md) run by this engine, with the TypeScript renderer
 * and detector, printing the JSON summary; and `--geneval METADATA.jsonl --out DIR`, which writes
 * generations in the folder layout GenEval's scorer reads (DIR/00000/metadata.jsonl,
 * DIR/00000/samples/0000.png, ...), for the real weights.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Engine } from "../engine/engine.js";
import type { ImageParams, JobEvent, JobRequest, RgbTensor } from "../engine/types.js";
import { encodeRgb } from "../images/index.js";
import { generateCases, parseCases, type Case } from "../shapes/cases.js";
import { detect } from "../shapes/detect.js";
import { caseResult, scoreCase, scoreKept, summarize, type CaseResult } from "../shapes/score.js";
import { render } from "../shapes/world.js";
import { imageParamsFrom, loadEngine } from "./engine.js";
import { numberOption, parseArgs, stringOption, type Parsed } from "./options.js";
import { Progress } from "./progress.js";

/** The done event of one job run to the end. */
export async function final(engine: Engine, request: JobRequest): Promise<Extract<JobEvent, { type: "done" }>> {
  for await (const e of engine.submit(request).events) if (e.type === "done") return e;
  throw new Error("the job ended without a result");
}

/**
 * The seeds of case `index`: its own `samples` seeds, never shared with another case. A seed fixes
 * the MAR order and every noise draw, so seeds 0..3 for every case (as before) made all prompts of
 * a category share four random streams: a stream that tears objects failed many prompts at once,
 * and the scores of two runs swung far beyond their binomial error (single objects 0.56 against
 * 0.88 by the reference sampler on the same 50 prompts).
 */
export function caseSeeds(index: number, samples: number): number[] {
  return Array.from({ length: samples }, (_, s) => index * samples + s);
}

/**
 * Scores of one case: generation cases are sampled once per seed (GenEval samples 4); an edit
 * also reports scoreKept, how many of the objects it should leave alone it did.
 */
async function runCase(engine: Engine, c: Case, seeds: number[], params: Partial<ImageParams>): Promise<{ scores: number[]; kept?: number | null }> {
  const size = params.resolution ?? engine.model.manifest.defaultResolution;
  const judge = (image: RgbTensor): ReturnType<typeof detect> => detect(image.rgb, image.width);
  if (c.task === "generate") {
    const images = await Promise.all(seeds.map((seed) => final(engine, { kind: "generate", prompt: c.prompt, params: { ...params, seed } })));
    return { scores: images.map((d) => scoreCase(c, judge(d.image!))) };
  }
  const scene: RgbTensor = { rgb: render(c.scene, size), width: size, height: size };
  if (c.task === "understand") {
    const d = await final(engine, { kind: "understand", image: scene, question: c.question, history: [], params: { resolution: size } });
    return { scores: [scoreCase(c, d.text ?? "")] };
  }
  const d = await final(engine, { kind: "edit", image: scene, instruction: c.instruction, params: { ...params, seed: seeds[0] } });
  const detected = judge(d.image!);
  return { scores: [scoreCase(c, detected)], kept: scoreKept(c, detected) };
}

/** Runs cases a few at a time, so the engine batches them. */
export async function evaluate(engine: Engine, cases: Case[], opts: { seeds: number; params: Partial<ImageParams>; concurrency: number; progress?: Progress }): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < cases.length) {
      const i = next++;
      const { scores, kept } = await runCase(engine, cases[i]!, caseSeeds(i, opts.seeds), opts.params);
      results[i] = caseResult(cases[i]!, scores, kept);
      opts.progress?.update(++done, cases.length);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return results;
}

/** JSONL of per-case results: {"case": index, ...caseResult}, the index of the case in the run. */
export function resultLines(results: readonly CaseResult[]): string {
  return results.map((r, i) => JSON.stringify({ case: i, ...r })).join("\n") + (results.length ? "\n" : "");
}

async function geneval(engine: Engine, p: Parsed): Promise<number> {
  const metadata = stringOption(p, "geneval")!;
  const out = stringOption(p, "out");
  if (out === undefined) throw AppError.badInput("--out", "a folder for the GenEval layout", "nothing");
  const perPrompt = numberOption(p, "per-prompt", true) ?? 4;
  const lines = (await readFile(metadata, "utf8")).split("\n").filter((l) => l.trim() !== "");
  const bar = new Progress("geneval");
  for (const [i, line] of lines.entries()) {
    let meta: { prompt?: unknown };
    try {
      meta = JSON.parse(line) as { prompt?: unknown };
    } catch {
      throw AppError.badInput(`${metadata}:${i + 1}`, "a JSON object", line);
    }
    if (typeof meta.prompt !== "string") throw AppError.badInput(`${metadata}:${i + 1}.prompt`, "a string", meta.prompt);
    const dir = path.join(out, String(i).padStart(5, "0"));
    await mkdir(path.join(dir, "samples"), { recursive: true });
    await writeFile(path.join(dir, "metadata.jsonl"), `${line.trim()}\n`);
    for (let k = 0; k < perPrompt; k++) {
      const d = await final(engine, { kind: "generate", prompt: meta.prompt, params: { ...imageParamsFrom(p), seed: k } });
      await writeFile(path.join(dir, "samples", `${String(k).padStart(4, "0")}.png`), await encodeRgb(d.image!.rgb, d.image!.width, d.image!.height, "png"));
    }
    bar.update(i + 1, lines.length);
  }
  bar.end();
  console.log(`wrote ${lines.length} prompts x ${perPrompt} samples to ${out}`);
  return 0;
}

/**
 * The cases to run: a file's, or fresh ones: n per generation category, and (unless --questions,
 * --edits, --repeats say otherwise) n questions, n edits and n "Repeat this image." edits.
 */
async function evalCases(p: Parsed): Promise<Case[]> {
  const file = stringOption(p, "cases");
  for (const name of ["repeats", "questions", "edits"]) {
    const v = numberOption(p, name, true);
    if (v === undefined) continue;
    if (file !== undefined) throw AppError.badInput(`--${name}`, "no --cases (a case file brings its own cases)", v);
    if (v < 0) throw AppError.badInput(`--${name}`, "a count >= 0", v);
  }
  if (file !== undefined) return parseCases(await readFile(file, "utf8"), file);
  const n = numberOption(p, "n", true) ?? 50;
  if (n < 0) throw AppError.badInput("--n", "a count >= 0 (0: no generation prompts)", n);
  const repeats = numberOption(p, "repeats", true) ?? n;
  const questions = numberOption(p, "questions", true) ?? n;
  const edits = numberOption(p, "edits", true) ?? n;
  if (n + repeats + questions + edits === 0) {
    throw AppError.badInput("--n, --questions, --edits, --repeats", "at least one case in all", 0);
  }
  return generateCases(n, numberOption(p, "case-seed", true) ?? Date.now() % 2 ** 31, repeats, { questions, edits });
}

export async function runEval(argv: string[], config: Config): Promise<number> {
  const p = parseArgs(argv, ["json"]);
  // Cases and options are checked before the model loads, so a mistake fails at once.
  const cases = p.options.has("geneval") ? [] : await evalCases(p);
  const results = stringOption(p, "results");
  if (results !== undefined && p.options.has("geneval")) throw AppError.badInput("--results", "no --geneval (GenEval's layout holds images, not scores)", results);
  // An unwritable path fails now, not after an hour of sampling.
  if (results !== undefined) await writeFile(results, "").catch(() => { throw AppError.badInput("--results", "a file path that can be written", results); });
  const engine = await loadEngine(config);
  try {
    if (p.options.has("geneval")) return await geneval(engine, p);
    const bar = new Progress("eval");
    const scored = await evaluate(engine, cases, { seeds: numberOption(p, "seeds", true) ?? 4, params: imageParamsFrom(p), concurrency: config.engineBatch, progress: bar });
    bar.end();
    const summary = summarize(scored);
    console.log(p.options.has("json") ? JSON.stringify(summary) : JSON.stringify(summary, null, 2));
    // Per-case results, one line each in case order: two evaluations of the same cases and seeds pair
    // case by case (toolkit.compare_evals --cases), an error well under the unpaired one.
    if (results !== undefined) await writeFile(results, resultLines(scored));
    return 0;
  } finally {
    await engine.close();
  }
}
