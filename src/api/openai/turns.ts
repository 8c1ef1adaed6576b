/**
 * OpenAI requests as turns: each call becomes one conversation, stored through the turn service
 * (message and replies committed before any job starts, every final status written by the
 * runner), and is answered from the turns' events. Nothing here talks to the engine directly.
 */
import type { ServerResponse } from "node:http";
import { AppError, ErrorCode } from "../../errors.js";
import type { ConversationRow, ImageMeta, NewHistoryTurn, TurnRow, UserRow } from "../../store/index.js";
import { toGlobalId } from "../ids.js";
import type { TurnHubEvent } from "../../turns/events.js";
import { cancelTurn, sendMessage, watchTurn, type Services } from "../../turns/service.js";
import type { Task } from "../types/enums.js";
import type { GenerationParamsInput } from "../types/inputs.js";
import { turnError } from "./errors.js";

export interface TurnRequest {
  /** The conversation's title in the GraphQL history. */
  title: string;
  text: string;
  task: Task;
  imageIds: string[];
  params: GenerationParamsInput;
  replies: number;
  history?: NewHistoryTurn[];
}

export interface StartedTurns {
  conversation: ConversationRow;
  replies: TurnRow[];
  /** One event stream per reply, subscribed before its job started; each ends after its final status. */
  events: AsyncGenerator<TurnHubEvent, void, undefined>[];
  /** Cancels the replies that have not finished (client gone, or a sibling failed). */
  cancel(): Promise<void>;
  /** Ends the event streams (always call it, in a finally block). */
  close(): Promise<void>;
}

const TITLE_CHARS = 80;

/** A history title from the request's text: its first line, shortened. */
export function titleOf(prefix: string, text: string): string {
  const line = text.trim().split("\n")[0]!.trim();
  const short = line.length > TITLE_CHARS ? `${line.slice(0, TITLE_CHARS - 3)}...` : line;
  return short.length === 0 ? prefix : `${prefix}: ${short}`;
}

/** Without an engine, turns would wait QUEUED for ever: a synchronous API must say so at once. */
export function requireEngine(services: Services): void {
  if (services.runner === null || services.model === null) {
    throw new AppError(ErrorCode.UNAVAILABLE, "the engine is not running (ENGINE=off, or the model failed to load: see /readyz)");
  }
}

/** Stores the request as a new conversation and starts its replies. */
export async function startTurns(services: Services, user: UserRow, request: TurnRequest): Promise<StartedTurns> {
  requireEngine(services);
  const conversation = await services.store.conversations.create(user.id, request.title);
  let events: AsyncGenerator<TurnHubEvent, void, undefined>[] = [];
  let stored;
  try {
    stored = await sendMessage(services, user, {
      conversationId: conversation.id,
      text: request.text,
      imageIds: request.imageIds,
      task: request.task,
      params: request.params,
      replies: request.replies,
      history: request.history,
      onStored: (replies) => {
        events = replies.map((turn) => watchTurn(services, user.id, turn.id));
      },
    });
  } catch (error) {
    // Nothing was stored in it: leave no empty conversation behind.
    await services.store.conversations.delete(user.id, conversation.id).catch(() => undefined);
    throw error;
  }
  const replies = stored.replies;
  const finished = new Set<string>();
  return {
    conversation,
    replies,
    events: events.map((source, i) => track(source, () => finished.add(replies[i]!.id))),
    async cancel() {
      for (const turn of replies) {
        if (finished.has(turn.id)) continue;
        // CONFLICT: it finished meanwhile, which is fine.
        await cancelTurn(services, user, turn.id).catch(() => undefined);
      }
    },
    async close() {
      await Promise.all(events.map((e) => e.return(undefined)));
    },
  };
}

/** Passes events through and notes when the turn reached its final status. */
async function* track(source: AsyncGenerator<TurnHubEvent, void, undefined>, onFinal: () => void): AsyncGenerator<TurnHubEvent, void, undefined> {
  for await (const event of source) {
    if (isFinal(event)) onFinal();
    yield event;
  }
}

export function isFinal(event: TurnHubEvent): boolean {
  const progress = event.kind === "STEP" || event.kind === "TOKEN";
  return !progress && (event.turn.status === "COMPLETED" || event.turn.status === "FAILED" || event.turn.status === "CANCELLED");
}

/** Reads events until the final one and returns the turn as it ended. */
export async function finalTurn(events: AsyncGenerator<TurnHubEvent, void, undefined>): Promise<TurnRow> {
  let last: TurnRow | null = null;
  for await (const event of events) last = event.turn;
  if (last === null) throw new AppError(ErrorCode.INTERNAL, "the turn vanished before it finished");
  return last;
}

/** The turn's result, or its failure as an AppError. */
export function completed(turn: TurnRow): TurnRow {
  if (turn.status !== "COMPLETED") throw turnError(turn);
  return turn;
}

/**
 * Cancels the request's turns when the client goes away before the answer is complete, so an
 * abandoned request does not keep the engine busy.
 */
export function cancelOnDisconnect(res: ServerResponse, started: StartedTurns): void {
  res.once("close", () => {
    if (!res.writableFinished) void started.cancel();
  });
}

/** The first image a finished turn produced, with its bytes. */
export async function outputImage(services: Services, user: UserRow, turn: TurnRow): Promise<{ meta: ImageMeta; bytes: Uint8Array }> {
  const output = (await services.store.turns.images(turn.id)).find((i) => i.role === "output");
  const found = output === undefined ? null : await services.store.images.bytes(user.id, output.image.id);
  if (found === null) throw new AppError(ErrorCode.INTERNAL, `turn ${turn.id} completed without an image`);
  return found;
}

/** Response headers that link a call to its place in the GraphQL history. */
export function historyHeaders(started: StartedTurns): Record<string, string> {
  // Exposed to browser scripts by cors.ts, where CORS_ORIGINS allows their origin.
  return { "x-unipic-conversation-id": toGlobalId("Conversation", started.conversation.id) };
}
