/**
 * A message's sampling parameters, checked and resolved before anything is stored: by the
 * engine's own table (engine/params.ts) for the turn's kind, so edits start from the manifest's
 * edit defaults, and every parameter the client set is checked whatever the kind. The stored turn
 * keeps the resolved values, in the API's spelling (previewMethod), so it says what its job runs
 * with; the runner hands them back to the engine as they are (jobParams).
 */
import type { Manifest } from "../engine/manifest.js";
import { integerIn, resolveImageParams, resolveUnderstandParams } from "../engine/params.js";
import type { CfgSchedule, ImageParams, PreviewKind, UnderstandParams } from "../engine/types.js";
import { TurnKind } from "../store/index.js";

/** A message's sampling parameters as the client sent them (GraphQL's GenerationParamsInput). */
export interface ParamsInput {
  steps?: number;
  cfg?: number;
  cfgSchedule?: CfgSchedule;
  temperature?: number;
  diffusionSteps?: number;
  seed?: number;
  resolution?: number;
  maxTokens?: number;
  previewMethod?: PreviewKind;
  previewEvery?: number;
  /** The preview's side in pixels: the runner's parameter, not the model's. */
  previewSize?: number;
}

const PREVIEW_SIZE = { min: 16, max: 1024 };

/** The fields that were set (GraphQL passes an omitted nullable field as undefined or null). */
function given(input: ParamsInput | null | undefined): ParamsInput {
  return Object.fromEntries(Object.entries(input ?? {}).filter(([, v]) => v !== undefined && v !== null)) as ParamsInput;
}

/** Stored (or given) parameters as the engine's partial image and understanding parameters. */
export function jobParams(p: ParamsInput): { image: Partial<ImageParams>; understand: Partial<UnderstandParams> } {
  const { steps, cfg, cfgSchedule, temperature, diffusionSteps, seed, resolution, maxTokens, previewMethod, previewEvery } = given(p);
  return {
    image: { steps, cfg, cfgSchedule, temperature, diffusionSteps, seed, resolution, preview: previewMethod, previewEvery },
    understand: { maxTokens, resolution },
  };
}

/**
 * The parameters to store for a turn of `kind` with `seed`: resolved against the model, or, when
 * no model manifest could be read, as given (the runner checks them when a model runs the turn).
 * BAD_INPUT names the field as the client wrote it (`at`.steps).
 */
export function resolveTurnParams(manifest: Manifest | null, kind: TurnKind, input: ParamsInput | null | undefined, seed: number, at = "input.params"): ParamsInput {
  const p = given(input);
  if (p.previewSize !== undefined) integerIn(`${at}.previewSize`, p.previewSize, PREVIEW_SIZE.min, PREVIEW_SIZE.max);
  if (manifest === null) return { ...p, seed };
  const partial = jobParams({ ...p, seed });
  // Both tables check what was given, so a value no turn of this model could use is refused
  // whatever the kind; the kind's own parameters are the ones stored.
  const image = resolveImageParams(manifest, partial.image, kind === TurnKind.EDIT ? "edit" : "generate", at);
  const understand = resolveUnderstandParams(manifest, partial.understand, at);
  if (kind === TurnKind.UNDERSTAND) return { ...understand, seed };
  const { preview, ...rest } = image;
  return { ...rest, previewMethod: preview, ...(p.previewSize === undefined ? {} : { previewSize: p.previewSize }) };
}
