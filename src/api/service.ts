/**
 * Conversation and turn operations, shared by GraphQL resolvers and HTTP routes. Knows the store,
 * the event hubs and (once the engine exists) a TurnRunner; knows nothing of GraphQL.
 * Rule: a turn is stored before any work on it starts, and every status change is published.
 */
import type { Config } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import type { ConversationRow, Store, TurnRow, UserRow } from "../store/index.js";
import { EventHub, type HubEvent } from "./events.js";
import { ConversationEventKind, Task, TurnEventKind, TurnKind } from "./types/enums.js";
import type { GenerationParamsInput } from "./types/inputs.js";
import { randomSeed, resolveKind, validateParams, validateText } from "./validate.js";

export interface PreviewPayload {
  step: number;
  width: number;
  height: number;
  dataUrl: string | null;
  url: string | null;
}

export interface TurnHubEvent extends HubEvent {
  kind: TurnEventKind;
  turn: TurnRow;
  queuePosition?: number | null;
  etaMs?: number | null;
  step?: number | null;
  totalSteps?: number | null;
  preview?: PreviewPayload | null;
  delta?: string | null;
  /** When the engine finished the step, ms since the epoch (latency measurements). */
  producedAt?: number;
}

export interface ConversationHubEvent extends HubEvent {
  kind: ConversationEventKind;
  conversation: ConversationRow | null;
  turn: TurnRow | null;
}

/** What runs assistant turns. Absent until an engine is configured: turns then stay QUEUED. */
export interface TurnRunner {
  /** Called once the turn is committed; must not throw (failures are written to the turn). */
  enqueue(turn: TurnRow): void;
  /** Stops a queued or running job; true when it was known to the runner. */
  cancel(turnId: string): boolean;
  /** Jobs ahead of this one, or null when it is not waiting. */
  queuePosition(turnId: string): number | null;
}

export interface Services {
  config: Config;
  store: Store;
  /** Is the database reachable? (readiness) */
  ping: () => Promise<boolean>;
  turnHub: EventHub<TurnHubEvent>;
  conversationHub: EventHub<ConversationHubEvent>;
  runner: TurnRunner | null;
}

export function createServices(config: Config, store: Store, ping: () => Promise<boolean>, runner: TurnRunner | null = null): Services {
  return { config, store, ping, turnHub: new EventHub(), conversationHub: new EventHub(), runner };
}

const STATUS_EVENT: Record<TurnRow["status"], TurnEventKind> = {
  QUEUED: TurnEventKind.QUEUED,
  RUNNING: TurnEventKind.RUNNING,
  COMPLETED: TurnEventKind.COMPLETED,
  FAILED: TurnEventKind.FAILED,
  CANCELLED: TurnEventKind.CANCELLED,
};

/** Publishes a turn's new status to its watchers and to its conversation's watchers. */
export function publishTurnStatus(services: Services, turn: TurnRow, extra: Partial<TurnHubEvent> = {}): void {
  services.turnHub.publish(turn.id, { kind: STATUS_EVENT[turn.status], turn, ...extra });
  services.conversationHub.publish(turn.conversationId, {
    kind: ConversationEventKind.TURN_UPDATED,
    conversation: null,
    turn,
  });
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
  params?: GenerationParamsInput | null;
}

/**
 * Stores the user's turn and a QUEUED assistant turn in one transaction, then hands the
 * assistant turn to the runner. EDIT and UNDERSTAND without an attached image use the
 * conversation's latest image.
 */
export async function sendMessage(services: Services, user: UserRow, args: SendMessageArgs): Promise<{ user: TurnRow; assistant: TurnRow }> {
  const { store, config } = services;
  const text = validateText(args.text, config.limits);
  if (args.imageIds.length > config.limits.maxImagesPerMessage) {
    throw AppError.limit("input.imageIds", `at most ${config.limits.maxImagesPerMessage} images`, `${args.imageIds.length} images`);
  }
  const params = validateParams(args.params);
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
  const seed = typeof params.seed === "number" ? params.seed : randomSeed();
  const stored = await store.turns.sendMessage(user.id, conversation.id, {
    text,
    task: args.task,
    kind,
    params: { ...params, seed },
    seed,
    imageIds,
  });
  if (stored === null) throw AppError.notFound("conversation");
  for (const turn of [stored.user, stored.assistant]) {
    services.conversationHub.publish(conversation.id, { kind: ConversationEventKind.TURN_ADDED, conversation: null, turn });
  }
  services.runner?.enqueue(stored.assistant);
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
