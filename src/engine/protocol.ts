/** Messages between the main thread (remote.ts) and the engine's worker thread (worker.ts). */
import type { EngineOptions } from "./engine.js";
import type { HistoryTurn, ImageParams, JobEvent, RgbTensor, UnderstandParams } from "./types.js";

export type SubmitRequest =
  | { kind: "generate"; prompt: string; params: Partial<ImageParams> }
  | { kind: "edit"; image: RgbTensor; instruction: string; params: Partial<ImageParams> }
  | { kind: "understand"; image: RgbTensor; question: string; history: HistoryTurn[]; params: Partial<UnderstandParams> };

export type ToWorker =
  | { op: "submit"; job: string; request: SubmitRequest; priority: number; user: string }
  | { op: "cancel"; job: string }
  | { op: "close" };

export type FromWorker =
  | { op: "loaded"; provider: string }
  | { op: "load-failed"; message: string; code: string }
  | { op: "event"; job: string; event: JobEvent }
  | { op: "end"; job: string; error: { code: string; message: string } | null }
  | { op: "dead"; message: string }
  | { op: "closed" };

export interface WorkerData {
  options: Omit<EngineOptions, "log">;
}
