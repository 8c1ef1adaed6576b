/** Public types of the engine: job parameters in, events out. No GraphQL, SQL or image files. */

export type CfgScheduleName = "constant" | "linear";
export type PreviewKind = "linear" | "vae" | "none";

export interface ImageParams {
  /** MAR iterations. */
  steps: number;
  cfg: number;
  cfgSchedule: CfgScheduleName;
  /** Scales the per-step diffusion noise only (spec 3.5). */
  temperature: number;
  /** Respaced DDPM steps of the diffusion head. */
  diffusionSteps: number;
  seed: number;
  /** Output side in pixels: one the model's manifest supports. */
  resolution: number;
  preview: PreviewKind;
  /** For vae previews: decode every this many MAR steps. */
  previewEvery: number;
}

export interface UnderstandParams {
  maxTokens: number;
  resolution: number;
}

/** An RGB image as a tensor: [height, width, 3] uint8, row-major. */
export interface RgbTensor {
  rgb: Uint8Array;
  width: number;
  height: number;
}

export interface Preview extends RgbTensor {
  /** MAR iterations done when it was made (1-based). */
  step: number;
  kind: Exclude<PreviewKind, "none">;
}

export interface HistoryTurn {
  role: "user" | "assistant";
  text: string;
}

export type JobEvent =
  | { type: "queued"; position: number; etaMs: number | null }
  | { type: "started" }
  | { type: "step"; index: number; total: number; preview: Preview | null; /** When the step finished, ms since the epoch (performance.timeOrigin + now: comparable across threads). */ at: number }
  | { type: "token"; delta: string; text: string }
  | { type: "done"; image: RgbTensor | null; text: string | null; latents: Float32Array | null; params: ImageParams | UnderstandParams };

export interface SubmitOptions {
  /** Higher runs first. */
  priority?: number;
  /** Round-robin key: jobs of different users take turns. */
  user?: string;
  /** Aborting cancels the job (between MAR steps). */
  signal?: AbortSignal;
}
