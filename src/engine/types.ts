/**
 * Public types of the engine: requests and parameters in, events out, and the client surface the
 * server programs against (EngineClient). No GraphQL, SQL or image files, and nothing of the
 * worker-side core, so protocol.ts and the server import this file alone.
 */
import type { Manifest } from "./manifest.js";

/**
 * The engine's vocabularies, defined once (name -> value): the API registers its GraphQL enums
 * CfgSchedule and PreviewMethod from these objects.
 */
export const CfgSchedule = { CONSTANT: "constant", LINEAR: "linear" } as const;
export type CfgSchedule = (typeof CfgSchedule)[keyof typeof CfgSchedule];
export const PreviewKind = { LINEAR: "linear", VAE: "vae", NONE: "none" } as const;
export type PreviewKind = (typeof PreviewKind)[keyof typeof PreviewKind];

/** Is `value` one of a vocabulary's values? */
export function isOneOf<T extends string>(vocabulary: Record<string, T>, value: unknown): value is T {
  return (Object.values(vocabulary) as unknown[]).includes(value);
}

/** A vocabulary's values as an error's "expected": `"a", "b" or "c"`. */
export function oneOf(vocabulary: Record<string, string>): string {
  const quoted = Object.values(vocabulary).map((v) => `"${v}"`);
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1)}`;
}

export interface ImageParams {
  /** MAR iterations. */
  steps: number;
  cfg: number;
  cfgSchedule: CfgSchedule;
  /** Scales the per-step diffusion noise only (docs/model.md §3.5). */
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

/** One job: what to do, its inputs and the caller's parameters (unset ones take the model's defaults). */
export type JobRequest =
  | { kind: "generate"; prompt: string; params: Partial<ImageParams> }
  | { kind: "edit"; image: RgbTensor; instruction: string; params: Partial<ImageParams> }
  | { kind: "understand"; image: RgbTensor; question: string; history: HistoryTurn[]; params: Partial<UnderstandParams> };

export type JobKind = JobRequest["kind"];

export interface SubmitOptions {
  /** Higher runs first. */
  priority?: number;
  /** Round-robin key: jobs of different users take turns. */
  user?: string;
  /** Aborting cancels the job (between MAR steps). */
  signal?: AbortSignal;
}

export interface JobHandle {
  id: string;
  /** Events until `done`; throws the job's AppError (CANCELLED, JOB_FAILED, ENGINE_DEAD). */
  events: AsyncGenerator<JobEvent, void, undefined>;
  cancel(): void;
}

/**
 * What the server needs of an engine: the in-process Engine, a worker thread (RemoteEngine) and
 * the pool of workers all provide it. `submit` checks the request's parameters against the
 * model and the queue's capacity at once (BAD_INPUT, QUEUE_FULL thrown, not streamed).
 */
export interface EngineClient {
  readonly manifest: Manifest;
  readonly ready: boolean;
  submit(request: JobRequest, options?: SubmitOptions): JobHandle;
  /** Position of a waiting job (0 = next), or null when it is not waiting. */
  queuePosition(id: string): number | null;
  /** A job's measured run time (a moving average), or null before one finished; for estimates. */
  readonly averageJobMs?: number | null;
  cancel(id: string): boolean;
  close(): Promise<void>;
}

export type Provider = "cpu" | "webgpu";

export interface EngineOptions {
  modelDir: string;
  /** onnxruntime execution provider; webgpu falls back to cpu (logged) without an adapter. */
  provider: Provider;
  /** onnxruntime intra-op threads (0: its default). */
  threads: number;
  log?: (line: string) => void;
  /** Jobs waiting at most (QUEUE_FULL beyond). */
  maxQueue: number;
  /** Jobs decoded together at most. */
  maxBatch: number;
}
