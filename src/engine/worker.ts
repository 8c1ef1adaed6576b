/**
 * The engine's thread. onnxruntime-node runs a session synchronously on the thread that calls it,
 * so on the main thread every model step would stall HTTP, WebSocket sends and previews for its
 * whole duration. Here it stalls nothing but itself. Speaks protocol.ts with remote.ts.
 */
import os from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { AppError } from "../errors.js";
import { Engine } from "./engine.js";
import type { FromWorker, ToWorker, WorkerData } from "./protocol.js";
import type { JobHandle } from "./types.js";

// On Linux a thread's nice value is its own, and threads it starts inherit it: lowering this
// thread (and so onnxruntime's pool, created below) lets the main thread answer HTTP and push
// previews first, while the model takes whatever CPU is left.
try {
  os.setPriority(10);
} catch {
  // Not permitted here: the engine simply runs at normal priority.
}

const port = parentPort!;
const post = (message: FromWorker): void => port.postMessage(message);
const { options } = workerData as WorkerData;
const handles = new Map<string, JobHandle>();

function errorOf(error: unknown): { code: string; message: string } {
  return error instanceof AppError ? { code: error.code, message: error.message } : { code: "JOB_FAILED", message: String((error as Error)?.message ?? error) };
}

async function pump(job: string, handle: JobHandle, engine: Engine): Promise<void> {
  try {
    for await (const event of handle.events) post({ op: "event", job, event });
    post({ op: "end", job, error: null });
  } catch (error) {
    post({ op: "end", job, error: errorOf(error) });
    if (!engine.ready) post({ op: "dead", message: (error as Error)?.message ?? String(error) });
  } finally {
    handles.delete(job);
  }
}

Engine.load({ ...options, log: (line) => process.stderr.write(`${line}\n`) }).then(
  (engine) => {
    post({ op: "loaded", provider: engine.model.provider });
    port.on("message", (message: ToWorker) => {
      if (message.op === "close") {
        void engine.close().then(() => post({ op: "closed" }));
        return;
      }
      if (message.op === "cancel") {
        handles.get(message.job)?.cancel();
        return;
      }
      const { request, job } = message;
      try {
        const handle = engine.submit(request, { priority: message.priority, user: message.user });
        handles.set(job, handle);
        void pump(job, handle, engine);
      } catch (error) {
        post({ op: "end", job, error: errorOf(error) });
      }
    });
  },
  (error: unknown) => post({ op: "load-failed", ...errorOf(error) }),
);
