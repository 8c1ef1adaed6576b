/**
 * Sampling parameters: the caller's choices over the manifest's defaults, checked against what
 * this model supports. Errors name the field, what was expected and what came.
 */
import { AppError } from "../errors.js";
import type { Manifest, ResolutionSpec, SamplingDefaults } from "./manifest.js";
import { CfgSchedule, isOneOf, oneOf, PreviewKind, type ImageParams, type JobRequest, type UnderstandParams } from "./types.js";

function int(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) throw AppError.badInput(`params.${field}`, `an integer in [${min}, ${max}]`, value);
  return value;
}

function num(field: string, value: number, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) throw AppError.badInput(`params.${field}`, `a number in [${min}, ${max}]`, value);
  return value;
}

/** The manifest's spec for a resolution; BAD_INPUT naming the supported sizes otherwise. */
export function resolutionSpec(m: Manifest, size: number): ResolutionSpec {
  const res = m.resolutions.find((r) => r.size === size);
  if (res === undefined) throw AppError.badInput("params.resolution", `one of ${m.resolutions.map((r) => r.size).join(", ")}`, size);
  return res;
}

/** Which image task the parameters are for: edits take the manifest's edit overrides. */
export type ImageTask = Exclude<JobRequest["kind"], "understand">;

/** The defaults a task starts from: sampling_defaults, with edit_sampling_defaults over it for edits. */
export function taskDefaults(m: Manifest, task: ImageTask): SamplingDefaults {
  return task === "edit" ? { ...m.sampling, ...m.editSampling } : m.sampling;
}

/** Required `task`, so no caller can forget that edits have defaults of their own. */
export function resolveImageParams(m: Manifest, p: Partial<ImageParams>, task: ImageTask): ImageParams {
  const d = taskDefaults(m, task);
  const resolution = p.resolution ?? m.defaultResolution;
  const res = { spec: resolutionSpec(m, resolution) };
  const cfgSchedule = p.cfgSchedule ?? d.cfgSchedule;
  if (!isOneOf(CfgSchedule, cfgSchedule)) throw AppError.badInput("params.cfgSchedule", oneOf(CfgSchedule), cfgSchedule);
  const preview = p.preview ?? PreviewKind.LINEAR;
  if (!isOneOf(PreviewKind, preview)) throw AppError.badInput("params.preview", oneOf(PreviewKind), preview);
  return {
    // More iterations than tokens would leave iterations that reveal nothing.
    steps: int("steps", p.steps ?? d.steps, 1, res.spec.tokens),
    cfg: num("cfg", p.cfg ?? d.cfg, 0, 30),
    cfgSchedule,
    temperature: num("temperature", p.temperature ?? d.temperature, 0, 5),
    diffusionSteps: int("diffusionSteps", p.diffusionSteps ?? d.diffusionSteps, 1, m.diffusion.T),
    seed: int("seed", p.seed ?? Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31 - 1),
    resolution,
    preview,
    previewEvery: int("previewEvery", p.previewEvery ?? 1, 1, 1024),
  };
}

export function resolveUnderstandParams(m: Manifest, p: Partial<UnderstandParams>): UnderstandParams {
  const resolution = p.resolution ?? m.defaultResolution;
  resolutionSpec(m, resolution);
  return { maxTokens: int("maxTokens", p.maxTokens ?? m.maxNewTokens, 1, 4096), resolution };
}

/** A request whose parameters are all set and checked: image jobs carry ImageParams, understanding UnderstandParams. */
export type ResolvedRequest = JobRequest extends infer R ? (R extends { kind: "understand" } ? R & { params: UnderstandParams } : R & { params: ImageParams }) : never;

/** Resolves a request's parameters for its kind (edits with the edit defaults); BAD_INPUT naming the field. */
export function resolveRequest(m: Manifest, request: JobRequest): ResolvedRequest {
  if (request.kind === "understand") return { ...request, params: resolveUnderstandParams(m, request.params) };
  return { ...request, params: resolveImageParams(m, request.params, request.kind) };
}
