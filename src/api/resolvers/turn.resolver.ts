/** Messages: sendMessage, cancelTurn, turnUpdated, and the relations of a Turn. */
import { Arg, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root, Subscription } from "type-graphql";
import { AppError } from "../../errors.js";
import type { Context } from "../context.js";
import { keyOf } from "../ids.js";
import type { TurnHubEvent } from "../../turns/events.js";
import { cancelTurn, getTurn, sendMessage, watchTurn } from "../../turns/service.js";
import { Task } from "../types/enums.js";
import { SendMessageInput } from "../types/inputs.js";
import { Conversation, Image, SendMessagePayload, Turn, TurnEvent } from "../types/objects.js";

@Resolver(() => Turn)
export class TurnResolver {
  @FieldResolver(() => Conversation)
  async conversation(@Root() turn: Turn, @Ctx() ctx: Context): Promise<Conversation> {
    const row = await ctx.services.store.conversations.get(ctx.user.id, turn.row.conversationId);
    if (row === null) throw AppError.notFound("conversation");
    return Conversation.from(row);
  }

  @FieldResolver(() => [Image], { description: "Images the turn was given (the source of an edit, the picture asked about)." })
  async inputImages(@Root() turn: Turn, @Ctx() ctx: Context): Promise<Image[]> {
    return (await ctx.services.store.turns.images(turn.row.id)).filter((i) => i.role === "input").map((i) => Image.from(i.image));
  }

  @FieldResolver(() => [Image], { description: "Images the turn produced." })
  async outputImages(@Root() turn: Turn, @Ctx() ctx: Context): Promise<Image[]> {
    return (await ctx.services.store.turns.images(turn.row.id)).filter((i) => i.role === "output").map((i) => Image.from(i.image));
  }

  @FieldResolver(() => Turn, { nullable: true, description: "For a model turn: the message it answers." })
  async replyTo(@Root() turn: Turn, @Ctx() ctx: Context): Promise<Turn | null> {
    if (turn.row.replyTo === null) return null;
    const row = await ctx.services.store.turns.get(ctx.user.id, turn.row.replyTo);
    return row === null ? null : Turn.from(row);
  }

  @FieldResolver(() => Int, { nullable: true, description: "Jobs ahead of this one while QUEUED (0 = next); null otherwise." })
  async queuePosition(@Root() turn: Turn, @Ctx() ctx: Context): Promise<number | null> {
    if (turn.row.status !== "QUEUED") return null;
    return (await ctx.services.runner?.queuePosition(turn.row.id)) ?? null;
  }

  @Mutation(() => SendMessagePayload, {
    description: "Stores the message and a QUEUED reply in one transaction and returns both at once; follow the reply with turnUpdated.",
  })
  async sendMessage(@Arg("input", () => SendMessageInput) input: SendMessageInput, @Ctx() ctx: Context): Promise<SendMessagePayload> {
    const imageIds = (input.imageIds ?? []).map((id, i) => keyOf("Image", id, `input.imageIds[${i}]`));
    const stored = await sendMessage(ctx.services, ctx.user, {
      conversationId: keyOf("Conversation", input.conversationId, "input.conversationId"),
      text: input.text,
      imageIds,
      task: input.task ?? Task.AUTO,
      params: input.params,
    });
    return { userTurn: Turn.from(stored.user), assistantTurn: Turn.from(stored.assistant) };
  }

  @Mutation(() => Turn, { description: "Stops a QUEUED or RUNNING model turn; it ends CANCELLED." })
  async cancelTurn(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Turn> {
    return Turn.from(await cancelTurn(ctx.services, ctx.user, keyOf("Turn", id, "id")));
  }

  @Subscription(() => TurnEvent, {
    description: "Live updates of one turn. The first event is a SNAPSHOT of its current state; progress previews may be skipped for a slow client, final events never are. The subscription completes after the final event (or a snapshot of a finished turn).",
    subscribe: async ({ args, context }) => {
      const ctx = context as Context;
      const key = keyOf("Turn", args.id as string, "id");
      await getTurn(ctx.services, ctx.user, key);
      return watchTurn(ctx.services, ctx.user.id, key);
    },
  })
  turnUpdated(@Arg("id", () => ID) _id: string, @Root() event: TurnHubEvent): TurnEvent {
    return {
      kind: event.kind,
      turn: Turn.from(event.turn),
      queuePosition: event.queuePosition ?? null,
      etaMs: event.etaMs ?? null,
      step: event.step ?? null,
      totalSteps: event.totalSteps ?? null,
      preview: event.preview ?? null,
      delta: event.delta ?? null,
    };
  }
}
