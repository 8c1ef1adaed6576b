/**
 * Sampling parameters: the caller's choices over the manifest's defaults, checked against what
 * this model supports. The one table of what each parameter may be: the engine's clients and the
 * API's message check (turns/params.ts) both use it. Errors name the field, what was expected and
 * what came; `at` says where the parameters sit in the caller's input ("params" by default, for
 * GraphQL messages "input.params").
 */
import { AppError } from "../errors.js";
import type { Manifest, ResolutionSpec, SamplingDefaults } from "./manifest.js";
import { CfgSchedule, isOneOf, oneOf, PreviewKind, type ImageParams, type JobRequest, type UnderstandParams } from "./types.js";

export const MAX_SEED = 2 ** 31 - 1;

/** `value` if it is an integer in [min, max]; BAD_INPUT naming `field` otherwise. */
export function integerIn(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw AppError.badInput(field, `an integer in [${min}, ${max}]`, value);
  return value;
}

function numberIn(field: string, value: number, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) throw AppError.badInput(field, `a number in [${min}, ${max}]`, value);
  return value;
}

/** The manifest's spec for a resolution; BAD_INPUT naming the supported sizes otherwise. */
export function resolutionSpec(m: Manifest, size: number, at = "params"): ResolutionSpec {
  const res = m.resolutions.find((r) => r.size === size);
  if (res === undefined) throw AppError.badInput(`${at}.resolution`, `one of ${m.resolutions.map((r) => r.size).join(", ")}`, size);
  return res;
}

/** Which image task the parameters are for: edits take the manifest's edit overrides. */
export type ImageTask = Exclude<JobRequest["kind"], "understand">;

/** The defaults a task starts from: sampling_defaults, with edit_sampling_defaults over it for edits. */
export function taskDefaults(m: Manifest, task: ImageTask): SamplingDefaults {
  return task === "edit" ? { ...m.sampling, ...m.editSampling } : m.sampling;
}

/** Required `task`, so no caller can forget that edits have defaults of their own. */
export function resolveImageParams(m: Manifest, p: Partial<ImageParams>, task: ImageTask, at = "params"): ImageParams {
  const d = taskDefaults(m, task);
  const resolution = p.resolution ?? m.defaultResolution;
  const spec = resolutionSpec(m, resolution, at);
  const cfgSchedule = p.cfgSchedule ?? d.cfgSchedule;
  if (!isOneOf(CfgSchedule, cfgSchedule)) throw AppError.badInput(`${at}.cfgSchedule`, oneOf(CfgSchedule), cfgSchedule);
  const preview = p.preview ?? PreviewKind.LINEAR;
  if (!isOneOf(PreviewKind, preview)) throw AppError.badInput(`${at}.preview`, oneOf(PreviewKind), preview);
  return {
    // More iterations than tokens would leave iterations that reveal nothing.
    steps: integerIn(`${at}.steps`, p.steps ?? d.steps, 1, spec.tokens),
    cfg: numberIn(`${at}.cfg`, p.cfg ?? d.cfg, 0, 30),
    cfgSchedule,
    temperature: numberIn(`${at}.temperature`, p.temperature ?? d.temperature, 0, 5),
    diffusionSteps: integerIn(`${at}.diffusionSteps`, p.diffusionSteps ?? d.diffusionSteps, 1, m.diffusion.T),
    seed: integerIn(`${at}.seed`, p.seed ?? Math.floor(Math.random() * (MAX_SEED + 1)), 0, MAX_SEED),
    resolution,
    preview,
    previewEvery: integerIn(`${at}.previewEvery`, p.previewEvery ?? 1, 1, 1024),
  };
}

export function resolveUnderstandParams(m: Manifest, p: Partial<UnderstandParams>, at = "params"): UnderstandParams {
  const resolution = p.resolution ?? m.defaultResolution;
  resolutionSpec(m, resolution, at);
  return { maxTokens: integerIn(`${at}.maxTokens`, p.maxTokens ?? m.maxNewTokens, 1, 4096), resolution };
}

/** A request whose parameters are all set and checked: image jobs carry ImageParams, understanding UnderstandParams. */
export type ResolvedRequest = JobRequest extends infer R ? (R extends { kind: "understand" } ? R & { params: UnderstandParams } : R & { params: ImageParams }) : never;

/** Resolves a request's parameters for its kind (edits with the edit defaults); BAD_INPUT naming the field. */
export function resolveRequest(m: Manifest, request: JobRequest): ResolvedRequest {
  if (request.kind === "understand") return { ...request, params: resolveUnderstandParams(m, request.params) };
  return { ...request, params: resolveImageParams(m, request.params, request.kind) };
}
