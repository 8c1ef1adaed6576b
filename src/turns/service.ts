/**
 * Conversation and turn operations, shared by GraphQL resolvers and HTTP routes. Knows the store,
 * the event hubs and (once the engine exists) a TurnQueue (queue.ts); knows nothing of GraphQL or HTTP.
 * Rule: a turn is stored before any work on it starts, and every status change is published.
 */
import type { Config } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Manifest } from "../engine/manifest.js";
import { TurnKind, type ConversationRow, type NewHistoryTurn, type Store, type Task, type TurnRow, type UserRow } from "../store/index.js";
import { ConversationEventKind, TurnEventKind, publishTurnStatus, type TurnEvents, type TurnHubEvent } from "./events.js";
import { resolveTurnParams, type ParamsInput } from "./params.js";
import type { QueueStats, TurnQueue } from "./queue.js";
import type { QuotaGuard } from "./quotas.js";
import { MAX_SEED, randomSeed, resolveKind, validateText } from "./validate.js";

/** Replies one message may ask for (OpenAI's `n`, 1-4 there too). */
export const MAX_REPLIES = 4;

/** What the operations below (and the transports calling them) work with; built once by app.ts. */
export interface Services extends TurnEvents {
  config: Config;
  store: Store;
  /** Is the database reachable? (readiness) */
  ping: () => Promise<boolean>;
  /** Where committed replies go to be run (queue.ts); null without an engine: turns then stay QUEUED. */
  runner: TurnQueue | null;
  /** The loaded model's manifest (null when ENGINE=off or it failed to load). */
  model: Manifest | null;
  /**
   * MODEL_DIR's manifest, read even when the engine is off: messages' parameters are checked
   * against it before they are stored (null when it cannot be read; then they are stored as given).
   */
  manifest: Manifest | null;
  /** Per-user quotas and rate limits, checked where turns and uploads are admitted. */
  quotas: QuotaGuard;
  /** Scaled out (REDIS_URL): the shared queue's state for /readyz and /metrics; else null. */
  queueStats?: QueueStats | null;
}

const FINAL_STATUSES = new Set<TurnRow["status"]>(["COMPLETED", "FAILED", "CANCELLED"]);

/** Ends a turn's stream after its final event (or a snapshot of a turn already finished). */
async function* untilFinal(source: AsyncGenerator<TurnHubEvent, void, undefined>): AsyncGenerator<TurnHubEvent, void, undefined> {
  try {
    for await (const event of source) {
      yield event;
      const progress = event.kind === TurnEventKind.STEP || event.kind === TurnEventKind.TOKEN;
      if (!progress && FINAL_STATUSES.has(event.turn.status)) return;
    }
  } finally {
    await source.return(undefined);
  }
}

/**
 * One turn's events: a SNAPSHOT of it as stored, then everything published, ending after the
 * final status. Subscribes at once (before returning), so nothing published later is missed.
 * The caller checks that the user may see the turn.
 */
export function watchTurn(services: Services, ownerId: string, turnId: string): AsyncGenerator<TurnHubEvent, void, undefined> {
  const source = services.turnHub.subscribe(turnId, async () => {
    const row = await services.store.turns.get(ownerId, turnId);
    if (row === null) return [];
    const queuePosition = row.status === "QUEUED" ? ((await services.runner?.queuePosition(row.id)) ?? null) : null;
    return [{ kind: TurnEventKind.SNAPSHOT, turn: row, queuePosition }];
  });
  const events = untilFinal(source);
  // An unstarted generator skips its finally block on return(): end the subscription anyway.
  const finish = events.return.bind(events);
  events.return = async (value) => {
    await source.return(undefined);
    return finish(value);
  };
  return events;
}

export async function getConversation(services: Services, user: UserRow, id: string): Promise<ConversationRow> {
  const row = await services.store.conversations.get(user.id, id);
  if (row === null) throw AppError.notFound("conversation");
  return row;
}

export async function getTurn(services: Services, user: UserRow, id: string): Promise<TurnRow> {
  const row = await services.store.turns.get(user.id, id);
  if (row === null) throw AppError.notFound("turn");
  return row;
}

export interface SendMessageArgs {
  conversationId: string;
  text: string;
  imageIds: string[];
  task: Task;
  params?: ParamsInput | null;
  /** Model replies (OpenAI's `n`), each its own turn and job; seeds run on from the first. Default 1. */
  replies?: number;
  /** Earlier messages to store as finished turns before this one (an OpenAI chat request's history). */
  history?: NewHistoryTurn[];
  /**
   * Called with the stored replies before their jobs are handed to the runner: a caller that
   * subscribes here cannot miss an event (the runner skips previews nobody watches).
   */
  onStored?: (replies: TurnRow[]) => void;
}

/**
 * Stores the user's turn and its QUEUED assistant turn(s) in one transaction (after any earlier
 * messages given as history), then hands the assistant turns to the runner. EDIT and UNDERSTAND without an attached image use the
 * conversation's latest image.
 */
export async function sendMessage(services: Services, user: UserRow, args: SendMessageArgs): Promise<{ user: TurnRow; assistant: TurnRow; replies: TurnRow[] }> {
  const { store, config } = services;
  const text = validateText(args.text, config.limits);
  for (const [i, h] of (args.history ?? []).entries()) validateText(h.text, config.limits, `history[${i}].text`);
  if (args.imageIds.length > config.limits.maxImagesPerMessage) {
    throw AppError.limit("input.imageIds", `at most ${config.limits.maxImagesPerMessage} images`, `${args.imageIds.length} images`);
  }
  const conversation = await getConversation(services, user, args.conversationId);
  for (const [i, imageId] of args.imageIds.entries()) {
    if (!(await store.images.visibleTo(user.id, imageId))) {
      throw new AppError(ErrorCode.NOT_FOUND, `input.imageIds[${i}]: image not found`, { field: `input.imageIds[${i}]` });
    }
  }
  const latest = args.imageIds.length > 0 ? null : await store.images.latestInConversation(conversation.id);
  const kind = resolveKind(args.task, text, args.imageIds.length > 0, latest !== null);
  const imageIds = [...args.imageIds];
  if (kind !== TurnKind.GENERATE && imageIds.length === 0) {
    if (latest === null) {
      throw AppError.badInput("input.imageIds", `an image to ${kind} (attach one, or make one earlier in this conversation)`, "none");
    }
    imageIds.push(latest.id);
  }
  if (kind === TurnKind.GENERATE && text.trim().length === 0) {
    throw AppError.badInput("input.text", "a description of the image to generate", text);
  }
  if (kind !== TurnKind.GENERATE && text.trim().length === 0) {
    throw AppError.badInput("input.text", kind === TurnKind.EDIT ? "an editing instruction" : "a question", text);
  }
  const count = args.replies ?? 1;
  if (!Number.isInteger(count) || count < 1 || count > MAX_REPLIES) throw AppError.badInput("replies", `an integer in [1, ${MAX_REPLIES}]`, count);
  const seed = args.params?.seed ?? randomSeed();
  // Checked by the engine's own table for this kind before anything is stored; stored resolved.
  const params = resolveTurnParams(services.manifest, kind, args.params, seed);
  // Reply i uses seed + i (wrapping within the seed range), so a request is reproducible from its first seed.
  const replies = Array.from({ length: count }, (_, i) => {
    const s = (seed + i) % (MAX_SEED + 1);
    return { seed: s, params: { ...params, seed: s } };
  });
  // The user's quotas last (after every check of the input), held while the turns are stored.
  const stored = await services.quotas.admitTurns(user, count, kind !== TurnKind.UNDERSTAND, () =>
    store.turns.sendMessage(user.id, conversation.id, {
      text,
      task: args.task,
      kind,
      params: { ...params, seed },
      seed,
      imageIds,
      replies,
      history: args.history,
    }),
  );
  if (stored === null) throw AppError.notFound("conversation");
  if (args.history !== undefined && args.history.length > 0 && services.conversationHub.watched(conversation.id)) {
    // Publish the stored history as well, in order, so conversation watchers see every new turn.
    const page = await store.turns.page(conversation.id, { first: args.history.length, after: stored.user.position - args.history.length - 1 });
    for (const turn of page.items) services.conversationHub.publish(conversation.id, { kind: ConversationEventKind.TURN_ADDED, conversation: null, turn });
  }
  for (const turn of [stored.user, ...stored.replies]) {
    services.conversationHub.publish(conversation.id, { kind: ConversationEventKind.TURN_ADDED, conversation: null, turn });
  }
  args.onStored?.(stored.replies);
  for (const reply of stored.replies) services.runner?.enqueue(reply);
  return stored;
}

/** Cancels a queued or running turn. Cancelling a cancelled turn returns it; a finished one is CONFLICT. */
export async function cancelTurn(services: Services, user: UserRow, id: string): Promise<TurnRow> {
  const turn = await getTurn(services, user, id);
  if (turn.status === "CANCELLED") return turn;
  if (turn.role !== "assistant" || turn.status === "COMPLETED" || turn.status === "FAILED") {
    throw new AppError(ErrorCode.CONFLICT, `turn is ${turn.role === "assistant" ? turn.status : "a user message"}; only QUEUED or RUNNING model turns can be cancelled`, {
      field: "id",
      expected: "a QUEUED or RUNNING turn",
      got: turn.status,
    });
  }
  const updated = await services.store.turns.setStatus(turn.id, "CANCELLED", { errorCode: ErrorCode.CANCELLED, errorMessage: "cancelled by the user" });
  services.runner?.cancel(turn.id);
  if (updated === null) {
    // It finished between our read and the update: report what it is now.
    return getTurn(services, user, id);
  }
  publishTurnStatus(services, updated);
  return updated;
}
