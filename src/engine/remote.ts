/**
 * One engine in a worker thread (worker.ts), so model steps never block the event loop that
 * serves HTTP, WebSockets and previews; the server reaches it through the pool (pool.ts). The
 * same EngineClient surface as Engine: parameters and queue capacity are checked here, so bad
 * input and QUEUE_FULL still fail at once.
 */
import { randomUUID } from "node:crypto";
import { Worker } from "node:worker_threads";
import { Channel } from "../channel.js";
import { AppError, ErrorCode } from "../errors.js";
import { loadManifest, type Manifest } from "./manifest.js";
import { resolveRequest } from "./params.js";
import type { FromWorker, ToWorker, WorkerData } from "./protocol.js";
import type { EngineClient, EngineOptions, JobEvent, JobHandle, JobRequest, SubmitOptions } from "./types.js";

/** The engine's thread. It runs TypeScript sources: its entry registers tsx's loader first. */
export function startEngineThread(data: WorkerData): Worker {
  return new Worker(new URL("./worker-entry.mjs", import.meta.url), { workerData: data, execArgv: [] });
}

interface RemoteJob {
  channel: Channel<JobEvent>;
  position: number | null;
  started: boolean;
}

export class RemoteEngine implements EngineClient {
  private readonly jobs = new Map<string, RemoteJob>();
  private dead: AppError | null = null;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly manifest: Manifest,
    private readonly worker: Worker,
    private readonly maxQueue: number,
  ) {
    worker.on("message", (message: FromWorker) => this.receive(message));
    worker.on("error", (error) => this.die(`the engine thread failed: ${error.message}`));
    worker.on("exit", (code) => {
      if (this.closing === null) this.die(`the engine thread exited (${code})`);
    });
  }

  /**
   * Validates the model folder here, then loads it in a worker started by `start` (a caller that
   * keeps the thread can watch it); rejects with the worker's reason.
   */
  static async load(options: EngineOptions, start: (data: WorkerData) => Worker = startEngineThread): Promise<RemoteEngine> {
    const manifest = await loadManifest(options.modelDir);
    const { log, ...rest } = options;
    const worker = start({ options: rest });
    const ready = await new Promise<FromWorker>((resolve) => {
      worker.once("message", resolve);
      worker.once("error", (error) => resolve({ op: "load-failed", code: ErrorCode.MODEL_INVALID, message: error.message }));
    });
    if (ready.op !== "loaded") {
      await worker.terminate();
      const failed = ready as Extract<FromWorker, { op: "load-failed" }>;
      throw new AppError((failed.code as ErrorCode) ?? ErrorCode.MODEL_INVALID, failed.message);
    }
    if (ready.provider !== options.provider) log?.(`engine: using ${ready.provider} (asked for ${options.provider})`);
    return new RemoteEngine(manifest, worker, options.maxQueue);
  }

  get ready(): boolean {
    return this.dead === null && this.closing === null;
  }

  submit(request: JobRequest, opts: SubmitOptions = {}): JobHandle {
    if (this.dead !== null) throw this.dead;
    if (this.closing !== null) throw new AppError(ErrorCode.UNAVAILABLE, "the engine is shutting down");
    const resolved = resolveRequest(this.manifest, request); // BAD_INPUT here, not from the thread
    const waiting = [...this.jobs.values()].filter((j) => !j.started).length;
    if (waiting >= this.maxQueue) {
      throw new AppError(ErrorCode.QUEUE_FULL, `the queue is full (${this.maxQueue} jobs waiting); try again shortly`, { field: "queue", expected: `fewer than ${this.maxQueue} waiting jobs`, got: `${waiting}` });
    }
    const id = randomUUID();
    const job: RemoteJob = { channel: new Channel<JobEvent>(), position: waiting, started: false };
    this.jobs.set(id, job);
    this.post({ op: "submit", job: id, request: resolved, priority: opts.priority ?? 0, user: opts.user ?? "" });
    opts.signal?.addEventListener("abort", () => this.cancel(id), { once: true });
    return { id, events: job.channel.drain(() => this.cancel(id)), cancel: () => this.cancel(id) };
  }

  queuePosition(id: string): number | null {
    const job = this.jobs.get(id);
    return job === undefined || job.started ? null : job.position;
  }

  cancel(id: string): boolean {
    if (!this.jobs.has(id)) return false;
    this.post({ op: "cancel", job: id });
    return true;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const done = (): void => {
        void this.worker.terminate().then(() => resolve());
      };
      this.worker.on("message", (m: FromWorker) => m.op === "closed" && done());
      this.post({ op: "close" });
      setTimeout(done, 5000).unref();
    });
    return this.closing;
  }

  private post(message: ToWorker): void {
    this.worker.postMessage(message);
  }

  private receive(message: FromWorker): void {
    if (message.op === "event") {
      const job = this.jobs.get(message.job);
      if (job === undefined) return;
      if (message.event.type === "queued") job.position = message.event.position;
      if (message.event.type === "started") job.started = true;
      job.channel.push(message.event);
    } else if (message.op === "end") {
      const job = this.jobs.get(message.job);
      this.jobs.delete(message.job);
      if (message.error === null) job?.channel.close();
      else job?.channel.fail(new AppError(message.error.code as ErrorCode, message.error.message));
    } else if (message.op === "dead") {
      this.die(message.message);
    }
  }

  private die(reason: string): void {
    if (this.dead !== null) return;
    this.dead = new AppError(ErrorCode.ENGINE_DEAD, `the inference engine stopped working: ${reason}`);
    for (const job of this.jobs.values()) job.channel.fail(this.dead);
    this.jobs.clear();
  }
}
