import { Field, ID, InterfaceType, ObjectType } from "type-graphql";

/** Relay's Node: every object with an opaque global id can be refetched with `node(id)`. */
@InterfaceType("Node", {
  description: "An object with an opaque, globally unique id.",
  resolveType: (value: { __typename?: string }) => value.__typename,
})
export abstract class Node {
  @Field(() => ID)
  id!: string;
}

@ObjectType("PageInfo", { description: "Relay cursor-connection paging state." })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => Boolean)
  hasPreviousPage!: boolean;

  @Field(() => String, { nullable: true })
  startCursor!: string | null;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}
