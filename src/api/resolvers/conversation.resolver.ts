/** Queries, mutations and subscriptions on conversations, and the Conversation.turns connection. */
import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Query, Resolver, Root, Subscription } from "type-graphql";
import { AppError } from "../../errors.js";
import type { Context } from "../context.js";
import { conversationCursor, keyOf, parseConversationCursor, parseTurnCursor, turnCursor } from "../ids.js";
import type { ConversationHubEvent } from "../../turns/events.js";
import { getConversation } from "../../turns/service.js";
import { ConversationEventKind } from "../types/enums.js";
import { CreateConversationInput } from "../types/inputs.js";
import { Conversation, ConversationConnection, ConversationEvent, Turn, TurnConnection } from "../types/objects.js";
import { validateTitle } from "../../turns/validate.js";

export function checkPageSize(value: number | undefined | null, field: string, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || value < 0) throw AppError.badInput(field, "a non-negative integer", value);
  if (value > max) throw AppError.limit(field, `at most ${max}`, value);
  return value;
}

/**
 * Counting a conversation's turns reads every row of it: only a query that selects totalCount
 * pays for that (a page of a 10,000-turn history no longer counts them all).
 */
@Resolver(() => TurnConnection)
export class TurnConnectionResolver {
  @FieldResolver(() => Int, { description: "Turns in the whole conversation." })
  totalCount(@Root() connection: TurnConnection, @Ctx() ctx: Context): Promise<number> {
    return ctx.services.store.turns.count(connection.conversationKey);
  }
}

@Resolver(() => Conversation)
export class ConversationResolver {
  @Query(() => Conversation, { description: "One of the viewer's conversations; NOT_FOUND otherwise." })
  async conversation(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Conversation> {
    return Conversation.from(await getConversation(ctx.services, ctx.user, keyOf("Conversation", id, "id")));
  }

  @Query(() => ConversationConnection, { description: "The viewer's conversations, newest first." })
  async conversations(
    @Arg("first", () => Int, { nullable: true }) first: number | undefined,
    @Arg("after", () => String, { nullable: true }) after: string | undefined,
    @Ctx() ctx: Context,
  ): Promise<ConversationConnection> {
    const max = ctx.services.config.limits.maxPageSize;
    const size = checkPageSize(first, "first", max) ?? Math.min(20, max);
    const cursor = after ? parseConversationCursor(after, "after") : undefined;
    const page = await ctx.services.store.conversations.list(ctx.user.id, { first: size, after: cursor });
    const edges = page.items.map((row) => ({ cursor: conversationCursor(row.createdAt, row.id), node: Conversation.from(row) }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: cursor !== undefined,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }

  @FieldResolver(() => TurnConnection, { description: "Turns in order. Page forwards with first/after, backwards with last/before." })
  async turns(
    @Root() conversation: Conversation,
    @Arg("first", () => Int, { nullable: true }) first: number | undefined,
    @Arg("after", () => String, { nullable: true }) after: string | undefined,
    @Arg("last", () => Int, { nullable: true }) last: number | undefined,
    @Arg("before", () => String, { nullable: true }) before: string | undefined,
    @Ctx() ctx: Context,
  ): Promise<TurnConnection> {
    const max = ctx.services.config.limits.maxPageSize;
    const f = checkPageSize(first, "first", max);
    const l = checkPageSize(last, "last", max);
    if (f !== undefined && l !== undefined) throw AppError.badInput("last", "not both first and last", "both");
    const page = await ctx.services.store.turns.page(conversation.key, {
      first: f === undefined && l === undefined ? Math.min(50, max) : f,
      last: l,
      after: after ? parseTurnCursor(after, "after") : undefined,
      before: before ? parseTurnCursor(before, "before") : undefined,
    });
    const edges = page.items.map((row) => ({ cursor: turnCursor(row.position), node: Turn.from(row) }));
    return {
      edges,
      nodes: edges.map((e) => e.node),
      conversationKey: conversation.key,
      pageInfo: {
        hasNextPage: page.hasNextPage,
        hasPreviousPage: page.hasPreviousPage,
        startCursor: edges[0]?.cursor ?? null,
        endCursor: edges.at(-1)?.cursor ?? null,
      },
    };
  }

  @Mutation(() => Conversation)
  async createConversation(
    @Arg("input", () => CreateConversationInput, { nullable: true }) input: CreateConversationInput | undefined,
    @Ctx() ctx: Context,
  ): Promise<Conversation> {
    const title = input?.title === undefined || input.title === null ? "New conversation" : validateTitle(input.title, "input.title");
    return Conversation.from(await ctx.services.store.conversations.create(ctx.user.id, title));
  }

  @Mutation(() => Conversation)
  async renameConversation(@Arg("id", () => ID) id: string, @Arg("title", () => String) title: string, @Ctx() ctx: Context): Promise<Conversation> {
    const key = keyOf("Conversation", id, "id");
    const row = await ctx.services.store.conversations.rename(ctx.user.id, key, validateTitle(title, "title"));
    if (row === null) throw AppError.notFound("conversation");
    ctx.services.conversationHub.publish(row.id, { kind: ConversationEventKind.RENAMED, conversation: row, turn: null });
    return Conversation.from(row);
  }

  @Mutation(() => ID, { description: "Deletes the conversation and its turns; returns its id." })
  async deleteConversation(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<string> {
    const key = keyOf("Conversation", id, "id");
    // Stop its running work first, so no job writes into a deleted conversation.
    const runner = ctx.services.runner;
    if (runner !== null) {
      const unfinished = await ctx.services.store.turns.unfinished();
      for (const t of unfinished) if (t.conversationId === key) runner.cancel(t.id);
    }
    if (!(await ctx.services.store.conversations.delete(ctx.user.id, key))) throw AppError.notFound("conversation");
    ctx.services.conversationHub.publish(key, { kind: ConversationEventKind.DELETED, conversation: null, turn: null });
    return id;
  }

  @Subscription(() => ConversationEvent, {
    description: "New turns and status changes of a conversation; the first event is a SNAPSHOT.",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const key = keyOf("Conversation", args.id as string, "id");
      await getConversation(ctx.services, ctx.user, key);
      return ctx.services.conversationHub.subscribe(key, async () => {
        const row = await ctx.services.store.conversations.get(ctx.user.id, key);
        return row === null ? [] : [{ kind: ConversationEventKind.SNAPSHOT, conversation: row, turn: null }];
      });
    },
  })
  conversationUpdated(@Arg("id", () => ID) _id: string, @Root() event: ConversationHubEvent): ConversationEvent {
    return {
      kind: event.kind,
      conversation: event.conversation === null ? null : Conversation.from(event.conversation),
      turn: event.turn === null ? null : Turn.from(event.turn),
    };
  }
}
