/**
 * A message's parameters are checked by the engine's own table for the turn's kind and stored
 * resolved (turns/params.ts), on the committed unipic-tiny manifest (64x64, 64 tokens, T 1000).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { loadManifest, type Manifest } from "../../src/engine/manifest.js";
import { TurnKind } from "../../src/store/index.js";
import { jobParams, resolveTurnParams } from "../../src/turns/params.js";
import { MODEL_DIR } from "../engine/fixtures.js";

const SAMPLING = { steps: 16, cfg: 3, cfgSchedule: "constant", temperature: 1, diffusionSteps: 25 } as const;
const DEFAULTS = { ...SAMPLING, resolution: 64, previewMethod: "linear", previewEvery: 1 };

// The committed model with fixed sampling defaults and no edit defaults: the shipped defaults
// change with the weights (chosen on ShapesEval); how parameters resolve does not.
let m: Manifest;
beforeAll(async () => {
  m = { ...(await loadManifest(MODEL_DIR)), sampling: { ...SAMPLING }, editSampling: {} };
});

describe("a message's parameters", () => {
  it("are stored resolved: what was set over the model's defaults, in the API's spelling", () => {
    expect(resolveTurnParams(m, TurnKind.GENERATE, {}, 7)).toEqual({ ...DEFAULTS, seed: 7 });
    expect(resolveTurnParams(m, TurnKind.GENERATE, { steps: 8, previewMethod: "vae", previewSize: 64, maxTokens: null } as never, 7)).toEqual({ ...DEFAULTS, steps: 8, previewMethod: "vae", previewSize: 64, seed: 7 });
    expect(resolveTurnParams(m, TurnKind.UNDERSTAND, { maxTokens: 5 }, 7)).toEqual({ maxTokens: 5, resolution: 64, seed: 7 });
  });

  it("give edits the manifest's edit defaults, under what was set", () => {
    const withEdit: Manifest = { ...m, editSampling: { cfg: 1.5, temperature: 0.5 } };
    expect(resolveTurnParams(withEdit, TurnKind.EDIT, {}, 1)).toMatchObject({ cfg: 1.5, temperature: 0.5, steps: 16 });
    expect(resolveTurnParams(withEdit, TurnKind.EDIT, { cfg: 2 }, 1)).toMatchObject({ cfg: 2, temperature: 0.5 });
    expect(resolveTurnParams(withEdit, TurnKind.GENERATE, {}, 1)).toMatchObject({ cfg: 3, temperature: 1 });
  });

  it("are refused with the engine's ranges, naming the field as the client wrote it", () => {
    expect(() => resolveTurnParams(m, TurnKind.GENERATE, { steps: 100 }, 1)).toThrow("input.params.steps: expected an integer in [1, 64], got 100");
    expect(() => resolveTurnParams(m, TurnKind.GENERATE, { resolution: 128 }, 1)).toThrow("input.params.resolution: expected one of 64, got 128");
    expect(() => resolveTurnParams(m, TurnKind.EDIT, { previewEvery: 1025 }, 1)).toThrow("input.params.previewEvery: expected an integer in [1, 1024], got 1025");
    // The two tables used to disagree here: the engine's is the one.
    expect(resolveTurnParams(m, TurnKind.GENERATE, { temperature: 0 }, 1)).toMatchObject({ temperature: 0 });
  });

  it("are all checked whatever the kind, though only the kind's own are stored", () => {
    expect(() => resolveTurnParams(m, TurnKind.UNDERSTAND, { steps: 100 }, 1)).toThrow(expect.objectContaining({ code: "BAD_INPUT", field: "input.params.steps" }));
    expect(() => resolveTurnParams(m, TurnKind.GENERATE, { maxTokens: 0 }, 1)).toThrow(expect.objectContaining({ code: "BAD_INPUT", field: "input.params.maxTokens" }));
    expect(() => resolveTurnParams(m, TurnKind.GENERATE, { previewSize: 8 }, 1)).toThrow("input.params.previewSize: expected an integer in [16, 1024], got 8");
  });

  it("are stored as given when no model manifest could be read (the runner checks them later)", () => {
    expect(resolveTurnParams(null, TurnKind.GENERATE, { steps: 100 }, 3)).toEqual({ steps: 100, seed: 3 });
    expect(() => resolveTurnParams(null, TurnKind.GENERATE, { previewSize: 8 }, 3)).toThrow(/previewSize/);
  });

  it("go back to the engine as they were stored", () => {
    const stored = resolveTurnParams(m, TurnKind.GENERATE, { steps: 8, previewMethod: "none" }, 9);
    expect(jobParams(stored).image).toEqual({ steps: 8, cfg: 3, cfgSchedule: "constant", temperature: 1, diffusionSteps: 25, seed: 9, resolution: 64, preview: "none", previewEvery: 1 });
    expect(jobParams({ maxTokens: 5, resolution: 64 }).understand).toEqual({ maxTokens: 5, resolution: 64 });
  });
});
