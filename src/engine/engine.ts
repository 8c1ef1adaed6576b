/**
 * The shared inference engine: one model, one loop. Jobs wait in a bounded queue (priority, then
 * per-user round robin); each tick admits jobs up to the batch size, runs one MAR iteration of
 * every image job together (mar.ts) and one token of every understanding job, then publishes
 * events. Cancellation is checked between ticks. A failing job fails alone; a broken session
 * fails every job with ENGINE_DEAD and `ready` turns false. Shaped like vLLM's EngineCore.step.
 */
import { randomUUID } from "node:crypto";
import { Channel } from "../channel.js";
import { AppError, ErrorCode } from "../errors.js";
import { ImageJob } from "./image-job.js";
import type { Manifest } from "./manifest.js";
import { runIteration } from "./mar.js";
import { Model } from "./model.js";
import { resolveRequest, type ResolvedRequest } from "./params.js";
import { JobQueue, type Queued } from "./queue.js";
import { seededDraws } from "./rng.js";
import type { EngineClient, EngineOptions, ImageParams, JobEvent, JobHandle, JobRequest, SubmitOptions } from "./types.js";
import { UnderstandJob } from "./understand-job.js";

type Work = ImageJob | UnderstandJob;

interface Job extends Queued {
  channel: Channel<JobEvent>;
  request: ResolvedRequest;
  work: Work | null;
  /** Finished, failed or cancelled: no more events. */
  ended: boolean;
  startedAt: number;
  /** A VAE preview in flight: at most one per job, so previews never pile up. */
  previewing: boolean;
}

export class Engine implements EngineClient {
  private readonly queue: JobQueue<Job>;
  private readonly running: Job[] = [];
  private readonly jobs = new Map<string, Job>();
  private loop: Promise<void> | null = null;
  private dead: AppError | null = null;
  private closed = false;
  /** Exponential moving averages for ETAs and benchmarks. */
  private jobMs: number | null = null;
  readonly stepMs: number[] = [];

  private constructor(readonly model: Model, private readonly options: EngineOptions) {
    this.queue = new JobQueue(options.maxQueue);
  }

  static async load(options: EngineOptions): Promise<Engine> {
    return new Engine(await Model.load(options.modelDir, options), options);
  }

  /** False once a session broke (every job then fails with ENGINE_DEAD) or after close(). */
  get ready(): boolean {
    return this.dead === null && !this.closed;
  }

  get manifest(): Manifest {
    return this.model.manifest;
  }

  /** Position of a waiting job (0 = next), or null when it is not waiting. */
  queuePosition(id: string): number | null {
    return this.queue.positions().get(id) ?? null;
  }

  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (job === undefined) return false;
    this.finish(job, new AppError(ErrorCode.CANCELLED, "the job was cancelled"));
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of [...this.jobs.values()]) this.finish(job, new AppError(ErrorCode.UNAVAILABLE, "the engine is shutting down"));
    await this.loop;
    await this.model.release();
  }

  submit(request: JobRequest, opts: SubmitOptions = {}): JobHandle {
    if (this.dead !== null) throw this.dead;
    if (this.closed) throw new AppError(ErrorCode.UNAVAILABLE, "the engine is shutting down");
    const resolved = resolveRequest(this.model.manifest, request); // BAD_INPUT at once
    const id = randomUUID();
    const job: Job = {
      id,
      priority: opts.priority ?? 0,
      user: opts.user ?? "",
      channel: new Channel<JobEvent>(),
      request: resolved,
      work: null,
      ended: false,
      startedAt: 0,
      previewing: false,
    };
    this.queue.push(job); // QUEUE_FULL at once
    this.jobs.set(id, job);
    opts.signal?.addEventListener("abort", () => this.cancel(id), { once: true });
    this.publishPositions();
    this.loop ??= this.run().finally(() => (this.loop = null));
    const events = job.channel.drain(() => this.cancel(id));
    return { id, events, cancel: () => this.cancel(id) };
  }

  /** The job's state machine: prompt prefill and, for edits and questions, the image's encoding. */
  private prepare(r: ResolvedRequest): Promise<Work> {
    switch (r.kind) {
      case "generate":
        return ImageJob.generate(this.model, r.prompt, r.params, seededDraws(r.params.seed));
      case "edit":
        return ImageJob.edit(this.model, r.image, r.instruction, r.params, seededDraws(r.params.seed));
      case "understand":
        return UnderstandJob.create(this.model, r.image, r.question, r.history, r.params);
    }
  }

  private publishPositions(): void {
    const perJob = this.jobMs;
    for (const [id, position] of this.queue.positions()) {
      const eta = perJob === null ? null : Math.round(Math.ceil((position + 1) / this.options.maxBatch) * perJob);
      this.jobs.get(id)?.channel.push({ type: "queued", position, etaMs: eta });
    }
  }

  /** Ends a job: `error` null means done normally (its done event was pushed already). */
  private finish(job: Job, error: AppError | null): void {
    if (job.ended) return;
    job.ended = true;
    this.queue.remove(job.id);
    this.jobs.delete(job.id);
    const at = this.running.indexOf(job);
    if (at >= 0) this.running.splice(at, 1);
    if (error === null) job.channel.close();
    else job.channel.fail(error);
    this.publishPositions();
  }

  private async run(): Promise<void> {
    while (!this.closed && this.dead === null && (this.running.length > 0 || this.queue.length > 0)) {
      await this.admit();
      const started = performance.now();
      await this.tick();
      if (this.running.length > 0) this.stepMs.push(performance.now() - started);
      if (this.stepMs.length > 1000) this.stepMs.splice(0, 500);
      // Let resolvers, sockets and cancellations run between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private async admit(): Promise<void> {
    let admitted = false;
    while (this.running.length < this.options.maxBatch && this.queue.length > 0) {
      const job = this.queue.shift()!;
      admitted = true;
      job.startedAt = performance.now();
      job.channel.push({ type: "started" });
      try {
        job.work = await this.prepare(job.request);
        if (!job.ended) this.running.push(job);
      } catch (error) {
        await this.fail([job], error);
      }
    }
    if (admitted) this.publishPositions();
  }

  private async tick(): Promise<void> {
    const images = this.running.filter((j): j is Job & { work: ImageJob } => j.work instanceof ImageJob);
    const texts = this.running.filter((j): j is Job & { work: UnderstandJob } => j.work instanceof UnderstandJob);
    if (images.length > 0) {
      try {
        await runIteration(this.model, images.map((j) => j.work));
      } catch {
        // Find the culprit: retry each job alone (its draws were rewound, so nothing changes).
        for (const job of images) {
          try {
            await runIteration(this.model, [job.work]);
          } catch (error) {
            await this.fail([job], error);
          }
        }
      }
      for (const job of images) if (!job.ended) await this.afterStep(job);
    }
    for (const job of texts) {
      try {
        const delta = await job.work.next();
        if (delta !== null && delta !== "") job.channel.push({ type: "token", delta, text: job.work.text });
        if (job.work.done) {
          job.channel.push({ type: "done", image: null, text: job.work.text, latents: null, params: job.request.params });
          this.completed(job);
        }
      } catch (error) {
        await this.fail([job], error);
      }
    }
  }

  private async afterStep(job: Job & { work: ImageJob }): Promise<void> {
    const work = job.work;
    const params = job.request.params as ImageParams;
    const total = work.plan.length;
    let preview = null;
    if (params.preview === "linear") preview = { ...work.linearPreview(), step: work.step, kind: "linear" as const };
    job.channel.push({ type: "step", index: work.step, total, preview, at: performance.timeOrigin + performance.now() });
    if (params.preview === "vae" && !work.done && !job.previewing && work.step % params.previewEvery === 0) {
      // Not awaited: the decode runs beside the next step and arrives when ready.
      job.previewing = true;
      const step = work.step;
      work.decode().then(
        (image) => {
          job.previewing = false;
          if (!job.ended) job.channel.push({ type: "step", index: step, total, preview: { ...image, step, kind: "vae" }, at: performance.timeOrigin + performance.now() });
        },
        () => (job.previewing = false),
      );
    }
    if (work.done) {
      try {
        const image = await work.decode();
        job.channel.push({ type: "done", image, text: null, latents: work.tokens, params });
        this.completed(job);
      } catch (error) {
        await this.fail([job], error);
      }
    }
  }

  private completed(job: Job): void {
    const ms = performance.now() - job.startedAt;
    this.jobMs = this.jobMs === null ? ms : 0.8 * this.jobMs + 0.2 * ms;
    this.finish(job, null);
  }

  /** Fails jobs alone, unless the sessions themselves broke: then everything fails, for good. */
  private async fail(jobs: Job[], error: unknown): Promise<void> {
    if (!(await this.model.healthy())) {
      this.dead = new AppError(ErrorCode.ENGINE_DEAD, `the inference engine stopped working: ${(error as Error)?.message ?? error}`, { cause: error });
      for (const job of [...this.jobs.values()]) this.finish(job, this.dead);
      this.options.log?.(`engine: dead: ${(error as Error)?.stack ?? String(error)}`);
      return;
    }
    for (const job of jobs) {
      const app = error instanceof AppError ? error : new AppError(ErrorCode.JOB_FAILED, `the job failed: ${(error as Error)?.message ?? error}`, { cause: error });
      this.finish(job, app.code === ErrorCode.BAD_INPUT ? app : new AppError(ErrorCode.JOB_FAILED, app.message, { cause: error }));
    }
  }
}
