/** Root queries: node(id), viewer; users and keys (admin); image relations. */
import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { AppError, ErrorCode } from "../../errors.js";
import type { Context } from "../context.js";
import { parseGlobalId } from "../ids.js";
import { getConversation, getTurn } from "../../turns/service.js";
import { Node } from "../types/node.js";
import { Conversation, CreateUserPayload, Image, Turn, User } from "../types/objects.js";
import { validateTitle } from "../../turns/validate.js";

@Resolver()
export class NodeResolver {
  @Query(() => Node, { nullable: true, description: "Refetch any object by its global id; null when it does not exist or is not yours." })
  async node(@Arg("id", () => ID) id: string, @Ctx() ctx: Context): Promise<Node | null> {
    const parsed = parseGlobalId(id);
    if (parsed === null) throw AppError.badInput("id", "a global id", id);
    const { services, user } = ctx;
    try {
      switch (parsed.type) {
        case "User":
          return parsed.key === user.id ? User.from(user) : null;
        case "Conversation":
          return Conversation.from(await getConversation(services, user, parsed.key));
        case "Turn":
          return Turn.from(await getTurn(services, user, parsed.key));
        case "Image": {
          if (!(await services.store.images.visibleTo(user.id, parsed.key))) return null;
          const meta = await services.store.images.meta(parsed.key);
          return meta === null ? null : Image.from(meta);
        }
      }
    } catch (error) {
      if (error instanceof AppError && error.code === ErrorCode.NOT_FOUND) return null;
      throw error;
    }
  }

  @Query(() => User, { description: "The user the API key belongs to." })
  viewer(@Ctx() ctx: Context): User {
    return User.from(ctx.user);
  }

  @Mutation(() => CreateUserPayload, { description: "Admin only: a new user and its first API key." })
  async createUser(@Arg("name", () => String) name: string, @Ctx() ctx: Context): Promise<CreateUserPayload> {
    requireAdmin(ctx);
    const created = await ctx.services.store.users.create(validateTitle(name, "name"));
    return { user: User.from(created.user), apiKey: created.apiKey };
  }

  @Mutation(() => Boolean, { description: "Revokes an API key: your own, or any key when you are an admin. False when unknown." })
  async revokeApiKey(@Arg("key", () => String) key: string, @Ctx() ctx: Context): Promise<boolean> {
    const owner = await ctx.services.store.users.byApiKey(key);
    if (owner === null) return false;
    if (owner.id !== ctx.user.id) requireAdmin(ctx);
    return ctx.services.store.users.revokeKey(key);
  }
}

function requireAdmin(ctx: Context): void {
  if (!ctx.user.isAdmin) throw new AppError(ErrorCode.FORBIDDEN, "this operation needs an admin API key");
}

@Resolver(() => Image)
export class ImageResolver {
  @FieldResolver(() => Image, { nullable: true, description: "The image this one was made from (edits)." })
  async sourceImage(@Root() image: Image, @Ctx() ctx: Context): Promise<Image | null> {
    const key = image.sourceImageKey;
    if (key === null || !(await ctx.services.store.images.visibleTo(ctx.user.id, key))) return null;
    const meta = await ctx.services.store.images.meta(key);
    return meta === null ? null : Image.from(meta);
  }

  @FieldResolver(() => Turn, { nullable: true, description: "The turn that produced it, when it is yours." })
  async producingTurn(@Root() image: Image, @Ctx() ctx: Context): Promise<Turn | null> {
    if (image.producingTurnKey === null) return null;
    const row = await ctx.services.store.turns.get(ctx.user.id, image.producingTurnKey);
    return row === null ? null : Turn.from(row);
  }
}
