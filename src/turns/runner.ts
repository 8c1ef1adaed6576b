/**
 * Runs assistant turns on the engine and streams them: the bridge between stored turns and
 * engine jobs. Input images are decoded to the model's resolution here (center crop for edits,
 * pad to square for understanding: docs/model.md section 4 step 1 and section 5), previews are
 * encoded here, and every result is stored content-addressed with its lineage before the turn is
 * marked COMPLETED.
 * Restart safety: turns left QUEUED or RUNNING by a stopped server are run again from their
 * stored seed and parameters (`resumeUnfinished`), which reproduces the same image.
 * In process it is the TurnQueue itself (the engine pool's queue orders the jobs); scaled out, a
 * worker (src/redis/worker.ts) calls `runStored` for each job it takes from Redis.
 */
import { createHash } from "node:crypto";
import { AppError, ErrorCode } from "../errors.js";
import type { EngineClient, HistoryTurn, ImageParams, JobEvent, JobHandle, Preview } from "../engine/types.js";
import { decodeToRgb, encodePngSync, encodeRgb, toDataUrl } from "../images/index.js";
import type { Store, TurnRow } from "../store/index.js";
import { publishTurnStatus, TurnEventKind, type PreviewPayload, type TurnEvents } from "./events.js";
import { jobParams, type ParamsInput } from "./params.js";
import type { TurnQueue } from "./queue.js";

/** Earlier turns an understanding turn sees as chat history. */
const HISTORY_TURNS = 8;
const DEFAULT_PREVIEW_SIZE = 128;

/** What a runner is built from: it reads and writes turns, publishes their events and runs jobs. */
export interface RunnerDeps {
  store: Store;
  events: TurnEvents;
  engine: EngineClient;
  log?: (line: string) => void;
  /**
   * Publish the engine's own queue positions (QUEUED events). Off on a scaled-out worker: there
   * the turn waited in the shared queue, whose positions the API nodes publish.
   */
  queueEvents?: boolean;
}

export class EngineRunner implements TurnQueue {
  private readonly handles = new Map<string, JobHandle>();
  /** Turns cancelled while their job still runs: their late progress events are not published. */
  private readonly stopped = new Set<string>();
  /** Turns whose job stops to be handed to another worker (shutdown): they go back to QUEUED. */
  private readonly handedBack = new Set<string>();
  private readonly store: Store;
  private readonly events: TurnEvents;
  private readonly engine: EngineClient;
  private readonly log: (line: string) => void;

  constructor(deps: RunnerDeps) {
    this.store = deps.store;
    this.events = deps.events;
    this.engine = deps.engine;
    this.log = deps.log ?? (() => undefined);
    this.queueEvents = deps.queueEvents ?? true;
  }

  private readonly queueEvents: boolean;

  enqueue(turn: TurnRow): void {
    void this.runTurn(turn);
  }

  /** Runs a turn to its final status (or until handed back); never rejects. */
  async runTurn(turn: TurnRow): Promise<void> {
    await this.run(turn).catch((error: unknown) => this.log(`runner: turn ${turn.id}: ${(error as Error)?.stack ?? String(error)}`));
  }

  /**
   * Runs a turn read back from the store by id (a job taken from a shared queue): nothing when it
   * is final or gone (a cancelled or already finished job must not run twice), and a turn left
   * RUNNING by a worker that died goes back to QUEUED first, so its watchers see it run again.
   */
  async runStored(turnId: string): Promise<void> {
    let turn = await this.store.turns.getById(turnId);
    if (turn === null || (turn.status !== "QUEUED" && turn.status !== "RUNNING")) return;
    if (turn.status === "RUNNING") {
      turn = await this.store.turns.setStatus(turnId, "QUEUED");
      if (turn === null) return;
      publishTurnStatus(this.events, turn);
    }
    await this.runTurn(turn);
  }

  /**
   * Stops a turn's job here, if it runs here. `handBack`: the turn returns to QUEUED (for
   * another worker) instead of ending; otherwise the caller has written CANCELLED.
   */
  cancel(turnId: string, how: "cancel" | "handBack" = "cancel"): boolean {
    const handle = this.handles.get(turnId);
    if (handle !== undefined) (how === "handBack" ? this.handedBack : this.stopped).add(turnId);
    handle?.cancel();
    return handle !== undefined;
  }

  /** Turns whose jobs run (or wait in the engine) here now. */
  get running(): number {
    return this.handles.size;
  }

  async queuePosition(turnId: string): Promise<number | null> {
    const handle = this.handles.get(turnId);
    return handle === undefined ? null : this.engine.queuePosition(handle.id);
  }

  /** Re-runs every turn a stopped server left QUEUED or RUNNING, oldest first. */
  async resumeUnfinished(): Promise<number> {
    const { store } = this;
    const turns = await store.turns.unfinished();
    for (const turn of turns) {
      const row = turn.status === "RUNNING" ? await store.turns.setStatus(turn.id, "QUEUED") : turn;
      if (row !== null) this.enqueue(row);
    }
    return turns.length;
  }

  private async run(turn: TurnRow): Promise<void> {
    const { store, events } = this;
    let handle: JobHandle;
    let sourceId: string | null;
    let params: ImageParams | null = null;
    try {
      const owner = await store.turns.ownerOf(turn.id);
      if (owner === null) return; // deleted meanwhile
      ({ handle, sourceId } = await this.submit(turn, owner));
    } catch (error) {
      await this.end(turn, error);
      return;
    }
    this.handles.set(turn.id, handle);
    let text = "";
    let current = turn;
    try {
      for await (const event of handle.events) {
        // A step the engine finished after cancelTurn must not follow the CANCELLED event.
        if (this.stopped.has(turn.id) || this.handedBack.has(turn.id)) continue;
        if (event.type === "queued") {
          if (!this.queueEvents) continue;
          events.turnHub.publish(turn.id, { kind: TurnEventKind.QUEUED, turn: current, queuePosition: event.position, etaMs: event.etaMs, coalesceKey: "queue" });
        } else if (event.type === "started") {
          const running = await store.turns.setStatus(turn.id, "RUNNING");
          if (running === null) {
            // Cancelled (on any node) before its job began here: stop it now.
            this.stopped.add(turn.id);
            handle.cancel();
            continue;
          }
          current = running;
          publishTurnStatus(events, current);
        } else if (event.type === "step") {
          if (!events.turnHub.watched(turn.id)) continue; // nobody watches: skip encoding the preview
          const preview = event.preview === null ? null : this.encodePreview(event.preview, turn.params);
          if (event.preview === null || preview !== null || event.preview.kind === "linear") {
            events.turnHub.publish(turn.id, { kind: TurnEventKind.STEP, turn: current, step: event.index, totalSteps: event.total, preview, producedAt: event.at, coalesceKey: "step" });
          }
        } else if (event.type === "token") {
          text = event.text;
          events.turnHub.publish(turn.id, { kind: TurnEventKind.TOKEN, turn: { ...current, text }, delta: event.delta, coalesceKey: "token" });
        } else if (event.type === "done") {
          if ("steps" in event.params) params = event.params;
          await this.complete(turn, sourceId, event, params);
        }
      }
    } catch (error) {
      await this.end(turn, error);
    } finally {
      this.handles.delete(turn.id);
      this.stopped.delete(turn.id);
      this.handedBack.delete(turn.id);
    }
  }

  /** Builds the engine job for a turn from its stored kind, text, images, seed and params. */
  private async submit(turn: TurnRow, ownerId: string): Promise<{ handle: JobHandle; sourceId: string | null }> {
    // Stored resolved by sendMessage (turns/params.ts); older turns may hold only what was asked.
    const params = jobParams({ ...(turn.params as ParamsInput), seed: turn.seed ?? undefined });
    const opts = { user: ownerId };
    const text = await this.userText(turn);
    if (turn.kind === "generate") return { handle: this.engine.submit({ kind: "generate", prompt: text, params: params.image }, opts), sourceId: null };
    const size = params.image.resolution ?? this.engine.manifest.defaultResolution;
    const source = await this.inputImage(turn, ownerId);
    if (turn.kind === "edit") {
      const rgb = await decodeToRgb(source.bytes, { size, fit: "crop" });
      const image = { rgb: rgb.rgb, width: rgb.width, height: rgb.height };
      return { handle: this.engine.submit({ kind: "edit", image, instruction: text, params: params.image }, opts), sourceId: source.id };
    }
    const rgb = await decodeToRgb(source.bytes, { size, fit: "pad", padColor: [127, 127, 127] });
    const image = { rgb: rgb.rgb, width: rgb.width, height: rgb.height };
    const request = { kind: "understand" as const, image, question: text, history: await this.history(turn), params: { ...params.understand, resolution: size } };
    const handle = this.engine.submit(request, opts);
    return { handle, sourceId: source.id };
  }

  private async userText(turn: TurnRow): Promise<string> {
    if (turn.replyTo === null) return turn.text;
    return (await this.store.turns.getById(turn.replyTo))?.text ?? turn.text;
  }

  /** The message's first input image (attached, or the conversation's latest at send time). */
  private async inputImage(turn: TurnRow, ownerId: string): Promise<{ id: string; bytes: Uint8Array }> {
    const { store } = this;
    const images = turn.replyTo === null ? [] : await store.turns.images(turn.replyTo);
    const input = images.filter((i) => i.role === "input").sort((a, b) => a.ord - b.ord)[0];
    const found = input === undefined ? null : await store.images.bytes(ownerId, input.image.id);
    if (found === null) throw AppError.badInput("imageIds", "an image to work on", "none");
    return { id: found.meta.id, bytes: found.bytes };
  }

  /** Earlier text of the conversation, oldest first, for understanding (the message itself excluded). */
  private async history(turn: TurnRow): Promise<HistoryTurn[]> {
    const { store } = this;
    const before = turn.replyTo === null ? turn.position : turn.position - 1;
    const page = await store.turns.page(turn.conversationId, { last: HISTORY_TURNS, before });
    return page.items.filter((t) => t.text !== "" && t.status === "COMPLETED").map((t) => ({ role: t.role, text: t.text }));
  }

  private encodePreview(preview: Preview, params: Record<string, unknown>): PreviewPayload | null {
    const every = typeof params.previewEvery === "number" ? params.previewEvery : 1;
    if (preview.kind === "linear" && preview.step % every !== 0) return null;
    const size = typeof params.previewSize === "number" ? params.previewSize : DEFAULT_PREVIEW_SIZE;
    // On the main thread: sharp would queue behind the engine on libuv's pool (see images/png.ts).
    const png = encodePngSync(preview.rgb, preview.width, preview.height, size);
    return { step: preview.step, width: size, height: size, dataUrl: toDataUrl(png, "image/png"), url: null };
  }

  private async complete(turn: TurnRow, sourceId: string | null, event: Extract<JobEvent, { type: "done" }>, params: ImageParams | null): Promise<void> {
    const { store } = this;
    let text: string | undefined;
    if (event.image !== null) {
      const png = await encodeRgb(event.image.rgb, event.image.width, event.image.height, "png");
      const id = createHash("sha256").update(png).digest("hex");
      const lineage = { model: this.engine.manifest.name, kind: turn.kind, seed: params?.seed ?? turn.seed, params, turnId: turn.id, sourceImage: sourceId };
      await store.images.put({ id, bytes: png, mime: "image/png", width: event.image.width, height: event.image.height, producingTurnId: turn.id, sourceImageId: sourceId, lineage });
      await store.turns.attachImage(turn.id, id, "output", 0);
    } else {
      text = event.text ?? "";
    }
    const done = await store.turns.setStatus(turn.id, "COMPLETED", text === undefined ? {} : { text });
    if (done !== null) publishTurnStatus(this.events, done);
  }

  /** Writes the final status of a turn that did not complete (never left QUEUED or RUNNING). */
  private async end(turn: TurnRow, error: unknown): Promise<void> {
    if (this.handedBack.has(turn.id)) {
      // Stopped for another worker to run from its stored seed: not an end.
      const row = await this.store.turns.setStatus(turn.id, "QUEUED").catch(() => null);
      if (row !== null) publishTurnStatus(this.events, row);
      return;
    }
    const app = error instanceof AppError ? error : new AppError(ErrorCode.JOB_FAILED, String((error as Error)?.message ?? error), { cause: error });
    if (app.code === ErrorCode.INTERNAL || !(error instanceof AppError)) this.log(`runner: turn ${turn.id} failed: ${(error as Error)?.stack ?? String(error)}`);
    const status = app.code === ErrorCode.CANCELLED ? "CANCELLED" : "FAILED";
    const row = await this.store.turns.setStatus(turn.id, status, { errorCode: app.code, errorMessage: app.message }).catch(() => null);
    if (row !== null) publishTurnStatus(this.events, row);
  }
}
