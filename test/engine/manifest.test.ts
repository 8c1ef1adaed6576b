/**
 * manifest.json parsing of the sampling defaults, and how image parameters resolve from them:
 * the optional edit_sampling_defaults apply to edit jobs only, and the caller's params win.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";
import { parseManifest } from "../../src/engine/manifest.js";
import { resolveImageParams } from "../../src/engine/params.js";
import { MODEL_DIR } from "./fixtures.js";

const COMMITTED = JSON.parse(readFileSync(path.join(MODEL_DIR, "manifest.json"), "utf8")) as Record<string, unknown>;
/** The committed manifest without its edit defaults: each test adds the ones it is about. */
const WITHOUT_EDIT: Record<string, unknown> = { ...COMMITTED };
delete WITHOUT_EDIT.edit_sampling_defaults;

function parse(extra: Record<string, unknown>) {
  return parseManifest(JSON.stringify({ ...WITHOUT_EDIT, ...extra }), MODEL_DIR);
}

function failure(extra: Record<string, unknown>): AppError {
  try {
    parse(extra);
  } catch (error) {
    return error as AppError;
  }
  throw new Error("parsed without error");
}

const BASE = { steps: 16, cfg: 3, cfgSchedule: "constant", temperature: 1, diffusionSteps: 25 };

describe("manifest sampling defaults", () => {
  it("reads the committed manifest's defaults (edits without guidance at their own temperature, chosen on ShapesEval)", () => {
    const m = parseManifest(JSON.stringify(COMMITTED), MODEL_DIR);
    expect(m.sampling).toEqual(COMMITTED.sampling_defaults);
    expect(m.editSampling).toEqual(COMMITTED.edit_sampling_defaults);
    // Text-to-image took T 0.35 and CFG 2 on 2026-11-30; edits T 0.4 on 2026-12-01 (run cpu19's sweep).
    expect(m.editSampling).toEqual({ cfg: 1, temperature: 0.4 });
  });

  it("reads a manifest without edit_sampling_defaults as no edit overrides", () => {
    expect(parse({}).editSampling).toEqual({});
  });

  it("reads edit_sampling_defaults as a subset of the keys", () => {
    const m = parse({ sampling_defaults: BASE, edit_sampling_defaults: { cfg: 1, cfgSchedule: "linear" } });
    expect(m.sampling).toEqual(BASE);
    expect(m.editSampling).toEqual({ cfg: 1, cfgSchedule: "linear" });
    expect(parse({ edit_sampling_defaults: {} }).editSampling).toEqual({});
  });

  it.each([
    [{ edit_sampling_defaults: { cfgSchedule: "cosine" } }, "edit_sampling_defaults.cfgSchedule"],
    [{ edit_sampling_defaults: { steps: 2.5 } }, "edit_sampling_defaults.steps"],
    [{ edit_sampling_defaults: { diffusionSteps: 0 } }, "edit_sampling_defaults.diffusionSteps"],
    [{ edit_sampling_defaults: { cfg: "1" } }, "edit_sampling_defaults.cfg"],
    [{ edit_sampling_defaults: { cfg_schedule: "linear" } }, "edit_sampling_defaults.cfg_schedule"],
    [{ edit_sampling_defaults: [1] }, "edit_sampling_defaults"],
    [{ edit_sampling_defaults: null }, "edit_sampling_defaults"],
    [{ sampling_defaults: { ...BASE, cfgSchedule: "cosine" } }, "sampling_defaults.cfgSchedule"],
    [{ sampling_defaults: { ...BASE, temperature: undefined } }, "sampling_defaults.temperature"],
  ])("fails MODEL_INVALID naming the field for %j", (extra, field) => {
    const e = failure(extra);
    expect(e).toBeInstanceOf(AppError);
    expect(e.code).toBe(ErrorCode.MODEL_INVALID);
    expect(e.field).toBe(field);
    expect(e.message).toContain(`manifest.json: ${field}: expected`);
  });
});

describe("resolveImageParams", () => {
  const m = parse({ sampling_defaults: BASE, edit_sampling_defaults: { cfg: 1, temperature: 0.5 } });
  const plain = parse({ sampling_defaults: BASE });

  it("gives edits the edit overrides over sampling_defaults", () => {
    expect(resolveImageParams(m, { seed: 1 }, "edit")).toMatchObject({ steps: 16, cfg: 1, cfgSchedule: "constant", temperature: 0.5, diffusionSteps: 25 });
  });

  it("leaves generation on sampling_defaults", () => {
    expect(resolveImageParams(m, { seed: 1 }, "generate")).toMatchObject({ steps: 16, cfg: 3, temperature: 1, diffusionSteps: 25 });
  });

  it("lets the caller's params win over either", () => {
    const p = { seed: 1, cfg: 2.5, temperature: 0.9, steps: 4 };
    expect(resolveImageParams(m, p, "edit")).toMatchObject({ cfg: 2.5, temperature: 0.9, steps: 4, diffusionSteps: 25 });
    expect(resolveImageParams(m, p, "generate")).toMatchObject({ cfg: 2.5, temperature: 0.9, steps: 4 });
  });

  it("resolves edits exactly like generation when the manifest has no edit defaults", () => {
    expect(resolveImageParams(plain, { seed: 1 }, "edit")).toEqual(resolveImageParams(plain, { seed: 1 }, "generate"));
  });

  it("still checks an overridden default against the model's limits", () => {
    const wild = parse({ edit_sampling_defaults: { steps: 10_000 } });
    expect(() => resolveImageParams(wild, { seed: 1 }, "edit")).toThrow(/params\.steps/);
    expect(resolveImageParams(wild, { seed: 1 }, "generate").steps).toBe((COMMITTED.sampling_defaults as { steps: number }).steps);
  });
});
