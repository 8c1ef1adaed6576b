/** Builds the executable schema from the type-graphql classes (the only source of the schema). */
import "reflect-metadata";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { createPubSub } from "@graphql-yoga/subscription";
import { buildSchema } from "type-graphql";
import { ConversationResolver, TurnConnectionResolver } from "./resolvers/conversation.resolver.js";
import { ImageResolver, NodeResolver } from "./resolvers/node.resolver.js";
import { TurnResolver } from "./resolvers/turn.resolver.js";
import type { FormatOptions } from "./errors.js";

/** What both GraphQL transports share: the schema, its connection fields (for the limits) and how errors are shown. */
export interface GraphQLSetup {
  schema: GraphQLSchema;
  connections: ReadonlySet<string>;
  errors: FormatOptions;
}

let built: Promise<GraphQLSchema> | undefined;

/** The schema is the same for every server in the process, so it is built once. */
export function createSchema(): Promise<GraphQLSchema> {
  built ??= buildSchema({
    resolvers: [NodeResolver, ConversationResolver, TurnConnectionResolver, TurnResolver, ImageResolver],
    // Our subscriptions bring their own async iterables (EventHub, with latest-wins previews),
    // but type-graphql refuses to build a Subscription type without a PubSub, so it gets one.
    pubSub: createPubSub(),
    validate: false,
  });
  return built;
}

/** SDL as committed in schema/schema.graphql (sorted, so the file diff shows real changes only). */
export async function printSdl(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await createSchema()))}\n`;
}
