/**
 * Object types of the schema. Each class is built from a store row by `from()`; relations
 * (a turn's conversation, its images, a conversation's turns) are field resolvers in
 * ../resolvers, so they are loaded only when asked for.
 */
import { DateTimeISOResolver, JSONObjectResolver } from "graphql-scalars";
import { Field, Int, ObjectType } from "type-graphql";
import type { ConversationRow, ImageMeta, TurnRow, UserRow } from "../../store/index.js";
import { toGlobalId } from "../ids.js";
import { mimeToExt, type ImageMime } from "../../images/index.js";
import { ConversationEventKind, Task, TurnEventKind, TurnKind, TurnRole, TurnStatus } from "./enums.js";
import { Node, PageInfo } from "./node.js";

@ObjectType("User", { implements: Node })
export class User extends Node {
  readonly __typename = "User";
  key!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Boolean)
  isAdmin!: boolean;

  @Field(() => DateTimeISOResolver)
  createdAt!: Date;

  static from(row: UserRow): User {
    return Object.assign(new User(), {
      id: toGlobalId("User", row.id),
      key: row.id,
      name: row.name,
      isAdmin: row.isAdmin,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType("Image", { implements: Node, description: "An image, content-addressed by the SHA-256 of its bytes." })
export class Image extends Node {
  readonly __typename = "Image";
  producingTurnKey!: string | null;
  sourceImageKey!: string | null;

  @Field(() => String, { description: "Hex SHA-256 of the stored bytes." })
  sha256!: string;

  @Field(() => String, { description: "Where to GET the bytes (send the same Authorization header)." })
  url!: string;

  @Field(() => String)
  mime!: string;

  @Field(() => Int)
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field(() => Int)
  byteSize!: number;

  @Field(() => JSONObjectResolver, { description: "How it was made: model, seed, parameters." })
  lineage!: Record<string, unknown>;

  @Field(() => DateTimeISOResolver)
  createdAt!: Date;

  static from(meta: ImageMeta): Image {
    return Object.assign(new Image(), {
      id: toGlobalId("Image", meta.id),
      sha256: meta.id,
      url: `/images/${meta.id}.${mimeToExt(meta.mime as ImageMime)}`,
      mime: meta.mime,
      width: meta.width,
      height: meta.height,
      byteSize: meta.byteSize,
      lineage: meta.lineage,
      createdAt: meta.createdAt,
      producingTurnKey: meta.producingTurnId,
      sourceImageKey: meta.sourceImageId,
    });
  }
}

@ObjectType("TurnError")
export class TurnError {
  @Field(() => String, { description: "An ErrorCode such as JOB_FAILED, ENGINE_DEAD, CANCELLED." })
  code!: string;

  @Field(() => String)
  message!: string;
}

@ObjectType("Turn", { implements: Node, description: "One message of a conversation, from a person or the model." })
export class Turn extends Node {
  readonly __typename = "Turn";
  row!: TurnRow;

  @Field(() => Int, { description: "1-based position in the conversation." })
  position!: number;

  @Field(() => TurnRole)
  role!: TurnRole;

  @Field(() => TurnKind, { nullable: true })
  kind!: TurnKind | null;

  @Field(() => Task)
  task!: Task;

  @Field(() => String, { description: "The message, or the model's answer for understanding turns." })
  text!: string;

  @Field(() => JSONObjectResolver, { description: "Sampling parameters the turn runs with: those requested, over the model's defaults." })
  params!: Record<string, unknown>;

  @Field(() => Int, { nullable: true, description: "The seed that makes the result reproducible." })
  seed!: number | null;

  @Field(() => TurnStatus)
  status!: TurnStatus;

  @Field(() => TurnError, { nullable: true })
  error!: TurnError | null;

  @Field(() => DateTimeISOResolver)
  createdAt!: Date;

  @Field(() => DateTimeISOResolver, { nullable: true })
  startedAt!: Date | null;

  @Field(() => DateTimeISOResolver, { nullable: true })
  finishedAt!: Date | null;

  static from(row: TurnRow): Turn {
    return Object.assign(new Turn(), {
      id: toGlobalId("Turn", row.id),
      row,
      position: row.position,
      role: row.role,
      kind: row.kind,
      task: row.task,
      text: row.text,
      params: row.params,
      seed: row.seed,
      status: row.status,
      error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? "" },
      createdAt: row.createdAt,
      startedAt: row.startedAt,
      finishedAt: row.finishedAt,
    });
  }
}

@ObjectType("Conversation", { implements: Node })
export class Conversation extends Node {
  readonly __typename = "Conversation";
  key!: string;
  ownerKey!: string;

  @Field(() => String)
  title!: string;

  @Field(() => DateTimeISOResolver)
  createdAt!: Date;

  @Field(() => DateTimeISOResolver, { description: "Last change: a new turn, a rename." })
  updatedAt!: Date;

  static from(row: ConversationRow): Conversation {
    return Object.assign(new Conversation(), {
      id: toGlobalId("Conversation", row.id),
      key: row.id,
      ownerKey: row.ownerId,
      title: row.title,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    });
  }
}

@ObjectType("TurnEdge")
export class TurnEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Turn)
  node!: Turn;
}

@ObjectType("TurnConnection")
export class TurnConnection {
  @Field(() => [TurnEdge])
  edges!: TurnEdge[];

  @Field(() => [Turn])
  nodes!: Turn[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  /** Whose turns these are: `totalCount` (TurnConnectionResolver) counts them only when asked. */
  conversationKey!: string;
}

@ObjectType("ConversationEdge")
export class ConversationEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Conversation)
  node!: Conversation;
}

@ObjectType("ConversationConnection")
export class ConversationConnection {
  @Field(() => [ConversationEdge])
  edges!: ConversationEdge[];

  @Field(() => [Conversation])
  nodes!: Conversation[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@ObjectType("Preview", { description: "A decoding preview: the image as it is after `step` MAR iterations." })
export class Preview {
  @Field(() => Int)
  step!: number;

  @Field(() => Int)
  width!: number;

  @Field(() => Int)
  height!: number;

  @Field(() => String, { nullable: true, description: "A small image inline, as a data: URL." })
  dataUrl!: string | null;

  @Field(() => String, { nullable: true, description: "Where to GET a larger preview." })
  url!: string | null;
}

@ObjectType("TurnEvent", { description: "One update of a turn, as streamed by `turnUpdated`." })
export class TurnEvent {
  @Field(() => TurnEventKind)
  kind!: TurnEventKind;

  @Field(() => Turn)
  turn!: Turn;

  @Field(() => Int, { nullable: true, description: "Jobs ahead of this one (0 = next), while QUEUED." })
  queuePosition!: number | null;

  @Field(() => Int, { nullable: true, description: "Estimated milliseconds until it starts, while QUEUED." })
  etaMs!: number | null;

  @Field(() => Int, { nullable: true })
  step!: number | null;

  @Field(() => Int, { nullable: true })
  totalSteps!: number | null;

  @Field(() => Preview, { nullable: true })
  preview!: Preview | null;

  @Field(() => String, { nullable: true, description: "New text since the previous TOKEN event." })
  delta!: string | null;
}

@ObjectType("ConversationEvent", { description: "A change in a conversation, as streamed by `conversationUpdated`." })
export class ConversationEvent {
  @Field(() => ConversationEventKind)
  kind!: ConversationEventKind;

  @Field(() => Conversation, { nullable: true, description: "Null once the conversation is deleted." })
  conversation!: Conversation | null;

  @Field(() => Turn, { nullable: true })
  turn!: Turn | null;
}

@ObjectType("SendMessagePayload")
export class SendMessagePayload {
  @Field(() => Turn, { description: "The message as stored." })
  userTurn!: Turn;

  @Field(() => Turn, { description: "The model's reply, QUEUED." })
  assistantTurn!: Turn;
}

@ObjectType("CreateUserPayload")
export class CreateUserPayload {
  @Field(() => User)
  user!: User;

  @Field(() => String, { description: "The new API key. It is shown only here: store it now." })
  apiKey!: string;
}
