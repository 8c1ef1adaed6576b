/**
 * `unipic generate | edit | understand`: one job on the engine from the command line, with a
 * progress bar on stderr. Images are read and written here (the engine sees RGB tensors only).
 */
import { readFile, writeFile } from "node:fs/promises";
import { engineOptions, type Config } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import { Engine } from "../engine/engine.js";
import type { ImageParams, JobEvent } from "../engine/types.js";
import { decodeToRgb, encodeRgb } from "../images/index.js";
import { numberOption, parseArgs, stringOption, type Parsed } from "./options.js";
import { Progress } from "./progress.js";

export function loadEngine(config: Config): Promise<Engine> {
  return Engine.load({ ...engineOptions(config), log: (line) => process.stderr.write(`${line}\n`) });
}

export function imageParamsFrom(p: Parsed): Partial<ImageParams> {
  const schedule = stringOption(p, "cfg-schedule");
  return {
    steps: numberOption(p, "steps", true),
    cfg: numberOption(p, "cfg"),
    cfgSchedule: schedule as ImageParams["cfgSchedule"] | undefined,
    temperature: numberOption(p, "temperature"),
    diffusionSteps: numberOption(p, "diffusion-steps", true),
    seed: numberOption(p, "seed", true),
    resolution: numberOption(p, "resolution", true),
    preview: "none",
  };
}

/** Runs a job's events to the end with a progress bar; returns the done event. */
export async function drive(events: AsyncGenerator<JobEvent, void, undefined>, label: string): Promise<Extract<JobEvent, { type: "done" }>> {
  const bar = new Progress(label);
  try {
    for await (const e of events) {
      if (e.type === "queued") bar.update(0, 1, `queued (${e.position} ahead)`);
      if (e.type === "step") bar.update(e.index, e.total);
      if (e.type === "token") bar.update(0, 0, JSON.stringify(e.text));
      if (e.type === "done") return e;
    }
  } finally {
    bar.end();
  }
  throw new AppError(ErrorCode.JOB_FAILED, "the job ended without a result");
}

async function writePng(path: string, image: { rgb: Uint8Array; width: number; height: number }): Promise<void> {
  await writeFile(path, await encodeRgb(image.rgb, image.width, image.height, "png"));
}

function required(p: Parsed, index: number, what: string): string {
  const v = p.positional[index];
  if (v === undefined) throw AppError.badInput(what, "a value", "nothing");
  return v;
}

export async function runEngineCommand(command: "generate" | "edit" | "understand", argv: string[], config: Config): Promise<number> {
  const p = parseArgs(argv);
  const engine = await loadEngine(config);
  try {
    if (command === "generate") {
      const prompt = required(p, 0, "PROMPT");
      const out = stringOption(p, "out") ?? "out.png";
      const done = await drive(engine.submit({ kind: "generate", prompt, params: imageParamsFrom(p) }).events, "generate");
      await writePng(out, done.image!);
      console.log(`${out} (seed ${(done.params as ImageParams).seed})`);
      return 0;
    }
    const input = required(p, 0, "IMAGE");
    const text = required(p, 1, command === "edit" ? "INSTRUCTION" : "QUESTION");
    const size = numberOption(p, "resolution", true) ?? engine.model.manifest.defaultResolution;
    const bytes = new Uint8Array(await readFile(input));
    if (command === "edit") {
      // Editing center-crops to a square (docs/model.md 4.1); understanding pads with grey 127 (docs/model.md 5).
      const rgb = await decodeToRgb(bytes, { size, fit: "crop" });
      const out = stringOption(p, "out") ?? "out.png";
      const done = await drive(engine.submit({ kind: "edit", image: rgb, instruction: text, params: imageParamsFrom(p) }).events, "edit");
      await writePng(out, done.image!);
      console.log(`${out} (seed ${(done.params as ImageParams).seed})`);
      return 0;
    }
    const rgb = await decodeToRgb(bytes, { size, fit: "pad", padColor: [127, 127, 127] });
    const params = { maxTokens: numberOption(p, "max-tokens", true), resolution: size };
    const done = await drive(engine.submit({ kind: "understand", image: rgb, question: text, history: [], params }).events, "understand");
    console.log(done.text);
    return 0;
  } finally {
    await engine.close();
  }
}
