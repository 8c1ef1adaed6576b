/** Messages between the main thread (remote.ts) and the engine's worker thread (worker.ts). */
import type { EngineOptions, JobEvent, JobRequest } from "./types.js";

export type ToWorker =
  | { op: "submit"; job: string; request: JobRequest; priority: number; user: string }
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
