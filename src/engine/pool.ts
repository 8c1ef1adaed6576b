/**
 * The engine as the server uses it: ENGINE_WORKERS engine threads (one is a pool of one) behind
 * one EngineClient. The one admission queue is here (bounded, priority, per-user round robin, the
 * same JobQueue as the engine), so positions, QUEUE_FULL and fairness live in one place whatever
 * the number of workers; a job leaves it for the least busy worker with a free batch slot and
 * runs there like any other job. Jobs never share arithmetic across rows (stages.ts), so which
 * worker runs a job does not change its bytes. A worker that dies fails its own jobs with
 * ENGINE_DEAD and the pool turns not ready.
 */
import { randomUUID } from "node:crypto";
import { Channel } from "../channel.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Manifest } from "./manifest.js";
import { resolveRequest, type ResolvedRequest } from "./params.js";
import { JobQueue, type Queued } from "./queue.js";
import { RemoteEngine } from "./remote.js";
import type { EngineClient, EngineOptions, JobEvent, JobHandle, JobRequest, SubmitOptions } from "./types.js";

interface PoolJob extends Queued {
  channel: Channel<JobEvent>;
  /** Parameters resolved and checked at submit, so a bad one fails before it waits. */
  request: ResolvedRequest;
  handle: JobHandle | null;
  ended: boolean;
}

interface Member {
  engine: EngineClient;
  active: number;
}

export class EnginePool implements EngineClient {
  private readonly members: Member[];
  private readonly queue: JobQueue<PoolJob>;
  private readonly jobs = new Map<string, PoolJob>();
  private closing = false;
  /** Moving average of a job's run time, for ETAs. */
  private jobMs: number | null = null;

  /** `engines` take at most `maxBatch` jobs each (give them a queue of that size); `maxQueue` wait here. */
  constructor(
    engines: EngineClient[],
    private readonly maxBatch: number,
    maxQueue: number,
  ) {
    this.members = engines.map((engine) => ({ engine, active: 0 }));
    this.queue = new JobQueue(maxQueue);
  }

  /** `workers` engine threads (at least one), each loading the model. */
  static async load(options: EngineOptions, workers: number): Promise<EnginePool> {
    // The pool holds the waiting jobs; a worker is never sent more than maxBatch at once.
    const each = { ...options, maxQueue: options.maxBatch };
    const engines = await Promise.all(Array.from({ length: Math.max(1, workers) }, () => RemoteEngine.load(each)));
    return new EnginePool(engines, options.maxBatch, options.maxQueue);
  }

  /** Jobs running on each engine, in order (how the pool spreads work). */
  get activeJobs(): number[] {
    return this.members.map((m) => m.active);
  }

  get manifest(): Manifest {
    return this.members[0]!.engine.manifest;
  }

  get ready(): boolean {
    return !this.closing && this.members.every((m) => m.engine.ready);
  }

  submit(request: JobRequest, opts: SubmitOptions = {}): JobHandle {
    if (this.closing) throw new AppError(ErrorCode.UNAVAILABLE, "the engine is shutting down");
    if (!this.ready) throw new AppError(ErrorCode.ENGINE_DEAD, "the inference engine stopped working: a worker is down");
    const resolved = resolveRequest(this.manifest, request);
    const id = randomUUID();
    const job: PoolJob = { id, priority: opts.priority ?? 0, user: opts.user ?? "", channel: new Channel<JobEvent>(), request: resolved, handle: null, ended: false };
    this.queue.push(job); // QUEUE_FULL at once
    this.jobs.set(id, job);
    opts.signal?.addEventListener("abort", () => this.cancel(id), { once: true });
    this.dispatch();
    this.publishPositions();
    return { id, events: job.channel.drain(() => this.cancel(id)), cancel: () => this.cancel(id) };
  }

  get averageJobMs(): number | null {
    return this.jobMs;
  }

  queuePosition(id: string): number | null {
    return this.queue.positions().get(id) ?? null;
  }

  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (job === undefined) return false;
    if (job.handle !== null) job.handle.cancel(); // running: the worker ends it CANCELLED
    else this.end(job, new AppError(ErrorCode.CANCELLED, "the job was cancelled"));
    return true;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const job of [...this.jobs.values()]) if (job.handle === null) this.end(job, new AppError(ErrorCode.UNAVAILABLE, "the engine is shutting down"));
    await Promise.all(this.members.map((m) => m.engine.close()));
  }

  /** Moves waiting jobs to workers with free batch slots, least busy first. */
  private dispatch(): void {
    for (;;) {
      const free = this.members.filter((m) => m.engine.ready && m.active < this.maxBatch).sort((a, b) => a.active - b.active)[0];
      if (free === undefined || this.queue.length === 0) return;
      const job = this.queue.shift()!;
      free.active++;
      void this.run(job, free);
    }
  }

  private async run(job: PoolJob, member: Member): Promise<void> {
    const t0 = performance.now();
    let error: AppError | null = null;
    try {
      job.handle = member.engine.submit(job.request, { priority: job.priority, user: job.user });
      for await (const event of job.handle.events) {
        if (event.type !== "queued") job.channel.push(event); // positions are the pool's
      }
      this.jobMs = this.jobMs === null ? performance.now() - t0 : 0.8 * this.jobMs + 0.2 * (performance.now() - t0);
    } catch (e) {
      error = e instanceof AppError ? e : new AppError(ErrorCode.JOB_FAILED, (e as Error).message, { cause: e });
    } finally {
      member.active--;
      this.end(job, error);
      this.dispatch();
      this.publishPositions();
    }
  }

  private end(job: PoolJob, error: AppError | null): void {
    if (job.ended) return;
    job.ended = true;
    this.queue.remove(job.id);
    this.jobs.delete(job.id);
    if (error === null) job.channel.close();
    else job.channel.fail(error);
  }

  private publishPositions(): void {
    const slots = this.maxBatch * this.members.length;
    for (const [id, position] of this.queue.positions()) {
      const eta = this.jobMs === null ? null : Math.round(Math.ceil((position + 1) / slots) * this.jobMs);
      this.jobs.get(id)?.channel.push({ type: "queued", position, etaMs: eta });
    }
  }
}
