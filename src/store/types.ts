/** Row shapes and the Store interface the API and the engine program against. */

/**
 * The turn vocabularies, each defined once (name -> stored value): the database enums
 * (schema.ts), the row types below and the GraphQL enums (api/types/enums.ts) are made from them.
 */
export const TurnStatus = { QUEUED: "QUEUED", RUNNING: "RUNNING", COMPLETED: "COMPLETED", FAILED: "FAILED", CANCELLED: "CANCELLED" } as const;
export type TurnStatus = (typeof TurnStatus)[keyof typeof TurnStatus];
export const TurnRole = { USER: "user", ASSISTANT: "assistant" } as const;
export type TurnRole = (typeof TurnRole)[keyof typeof TurnRole];
/** What the model does for a turn; the engine's JobRequest kinds. */
export const TurnKind = { UNDERSTAND: "understand", GENERATE: "generate", EDIT: "edit" } as const;
export type TurnKind = (typeof TurnKind)[keyof typeof TurnKind];
/** What the sender asked for (AUTO: the server chooses the kind). */
export const Task = { AUTO: "AUTO", GENERATE: "GENERATE", EDIT: "EDIT", UNDERSTAND: "UNDERSTAND" } as const;
export type Task = (typeof Task)[keyof typeof Task];
export type ImageRole = "input" | "output";

/** A vocabulary's values as the non-empty tuple drizzle's pgEnum takes. */
export function valuesOf<T extends string>(vocabulary: Record<string, T>): [T, ...T[]] {
  return Object.values(vocabulary) as [T, ...T[]];
}

export const TURN_STATUSES = valuesOf(TurnStatus);

export interface UserRow {
  id: string;
  name: string;
  isAdmin: boolean;
  createdAt: Date;
}

export interface ConversationRow {
  id: string;
  ownerId: string;
  title: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface TurnRow {
  id: string;
  conversationId: string;
  position: number;
  role: TurnRole;
  kind: TurnKind | null;
  task: Task;
  text: string;
  params: Record<string, unknown>;
  seed: number | null;
  status: TurnStatus;
  errorCode: string | null;
  errorMessage: string | null;
  replyTo: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

export interface ImageMeta {
  /** sha256 hex of the bytes */
  id: string;
  mime: string;
  width: number;
  height: number;
  byteSize: number;
  createdAt: Date;
  producingTurnId: string | null;
  sourceImageId: string | null;
  lineage: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

export interface ConversationCursor {
  createdAt: Date;
  id: string;
}

export interface TurnPageArgs {
  first?: number;
  /** position */
  after?: number;
  last?: number;
  /** position */
  before?: number;
}

export interface NewUserTurn {
  text: string;
  task: Task;
  kind: TurnKind | null;
  params: Record<string, unknown>;
  seed: number | null;
  imageIds: string[];
  /**
   * The model's replies to store, QUEUED, each its own turn (one job, one result): several for an
   * OpenAI `n` > 1 request. Absent: one reply with the message's seed and params.
   */
  replies?: Array<{ seed: number | null; params: Record<string, unknown> }>;
  /**
   * Earlier messages to store, finished, before this one (an OpenAI chat request carries its own
   * history); the runner then gives them to the model as the conversation so far.
   */
  history?: NewHistoryTurn[];
}

export interface NewHistoryTurn {
  role: TurnRole;
  text: string;
  imageIds: string[];
}

export interface NewImage {
  id: string;
  bytes: Uint8Array;
  mime: string;
  width: number;
  height: number;
  producingTurnId?: string | null;
  sourceImageId?: string | null;
  lineage?: Record<string, unknown>;
}

export interface TurnImage {
  image: ImageMeta;
  role: ImageRole;
  ord: number;
}

export interface Store {
  users: {
    create(name: string, opts?: { isAdmin?: boolean }): Promise<{ user: UserRow; apiKey: string }>;
    /**
     * Creates an admin when there are no users at all, atomically across processes sharing the
     * database; returns its key, or null when users exist.
     */
    createFirstAdmin(name: string): Promise<string | null>;
    count(): Promise<number>;
    byApiKey(key: string): Promise<UserRow | null>;
    byId(id: string): Promise<UserRow | null>;
    byName(name: string): Promise<UserRow | null>;
    issueKey(userId: string): Promise<string>;
    revokeKey(key: string): Promise<boolean>;
    revokeAllKeys(userId: string): Promise<number>;
  };
  conversations: {
    create(ownerId: string, title: string): Promise<ConversationRow>;
    get(ownerId: string, id: string): Promise<ConversationRow | null>;
    list(ownerId: string, page: { first: number; after?: ConversationCursor }): Promise<Page<ConversationRow>>;
    rename(ownerId: string, id: string, title: string): Promise<ConversationRow | null>;
    delete(ownerId: string, id: string): Promise<boolean>;
    touch(id: string): Promise<void>;
  };
  turns: {
    sendMessage(
      ownerId: string,
      conversationId: string,
      user: NewUserTurn,
    ): Promise<{ user: TurnRow; assistant: TurnRow; replies: TurnRow[] } | null>;
    get(ownerId: string, id: string): Promise<TurnRow | null>;
    getById(id: string): Promise<TurnRow | null>;
    ownerOf(turnId: string): Promise<string | null>;
    page(conversationId: string, page: TurnPageArgs): Promise<Page<TurnRow>>;
    count(conversationId: string): Promise<number>;
    setStatus(
      id: string,
      to: TurnStatus,
      extra?: { errorCode?: string; errorMessage?: string; text?: string },
    ): Promise<TurnRow | null>;
    unfinished(): Promise<TurnRow[]>;
    /** The owner's model turns QUEUED or RUNNING now. */
    activeCount(ownerId: string): Promise<number>;
    images(turnId: string): Promise<TurnImage[]>;
    attachImage(turnId: string, imageId: string, role: ImageRole, ord: number): Promise<void>;
    countByStatus(): Promise<Record<TurnStatus, number>>;
  };
  images: {
    put(img: NewImage): Promise<ImageMeta>;
    grantUpload(userId: string, imageId: string): Promise<void>;
    meta(id: string): Promise<ImageMeta | null>;
    visibleTo(userId: string, id: string): Promise<boolean>;
    bytes(userId: string, id: string): Promise<{ meta: ImageMeta; bytes: Uint8Array } | null>;
    latestInConversation(conversationId: string): Promise<ImageMeta | null>;
    /** Bytes of the images the user can see (uploads, and images on their turns), each counted once. */
    bytesHeldBy(userId: string): Promise<number>;
  };
}
