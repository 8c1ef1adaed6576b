/**
 * The database schema. Only drizzle-kit writes migrations/: after changing this file run
 * `npx drizzle-kit generate --name <what>`. Keep to PostgreSQL 15 features (PGlite is 18).
 * Timestamps have millisecond precision so a JS Date round-trips exactly (keyset cursors).
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
  type AnyPgColumn,
} from "drizzle-orm/pg-core";
import { Task, TurnKind, TurnRole, TurnStatus, valuesOf } from "./types.js";

/** drizzle 0.45 has no bytea column; pg gives Buffer, PGlite Uint8Array (or hex text). */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array | string }>({
  dataType: () => "bytea",
  toDriver: (v) => v,
  fromDriver: (v) =>
    typeof v === "string"
      ? new Uint8Array(Buffer.from(v.startsWith("\\x") ? v.slice(2) : v, "hex"))
      : new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
});

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date", precision: 3 });
const createdAt = () => ts("created_at").notNull().defaultNow();

export const turnRole = pgEnum("turn_role", valuesOf(TurnRole));
export const turnKind = pgEnum("turn_kind", valuesOf(TurnKind));
export const taskChoice = pgEnum("task_choice", valuesOf(Task));
export const turnStatus = pgEnum("turn_status", valuesOf(TurnStatus));
export const imageRole = pgEnum("image_role", ["input", "output"]);

export const users = pgTable("users", {
  id: uuid("id").primaryKey().defaultRandom(),
  name: text("name").notNull(),
  isAdmin: boolean("is_admin").notNull().default(false),
  createdAt: createdAt(),
});

export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    keyHash: text("key_hash").notNull().unique(),
    prefix: text("prefix").notNull(),
    createdAt: createdAt(),
    revokedAt: ts("revoked_at"),
  },
  (t) => [index("api_keys_user_idx").on(t.userId)],
);

export const conversations = pgTable(
  "conversations",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ownerId: uuid("owner_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    title: text("title").notNull(),
    createdAt: createdAt(),
    updatedAt: ts("updated_at").notNull().defaultNow(),
  },
  (t) => [index("conversations_owner_created_idx").on(t.ownerId, t.createdAt.desc(), t.id)],
);

export const turns = pgTable(
  "turns",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    conversationId: uuid("conversation_id")
      .notNull()
      .references(() => conversations.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    role: turnRole("role").notNull(),
    kind: turnKind("kind"),
    task: taskChoice("task").notNull(),
    text: text("text").notNull().default(""),
    params: jsonb("params").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    seed: bigint("seed", { mode: "number" }),
    status: turnStatus("status").notNull(),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    replyTo: uuid("reply_to").references((): AnyPgColumn => turns.id, { onDelete: "set null" }),
    createdAt: createdAt(),
    startedAt: ts("started_at"),
    finishedAt: ts("finished_at"),
  },
  (t) => [
    unique("turns_conversation_position_uq").on(t.conversationId, t.position),
    index("turns_status_idx").on(t.status, t.createdAt),
  ],
);

export const images = pgTable(
  "images",
  {
    id: text("id").primaryKey(),
    bytes: bytea("bytes").notNull(),
    mime: text("mime").notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    byteSize: integer("byte_size").notNull(),
    createdAt: createdAt(),
    producingTurnId: uuid("producing_turn_id").references(() => turns.id, { onDelete: "set null" }),
    sourceImageId: text("source_image_id"),
    lineage: jsonb("lineage").$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
  },
  (t) => [index("images_producing_turn_idx").on(t.producingTurnId)],
);

export const turnImages = pgTable(
  "turn_images",
  {
    turnId: uuid("turn_id")
      .notNull()
      .references(() => turns.id, { onDelete: "cascade" }),
    imageId: text("image_id")
      .notNull()
      .references(() => images.id),
    role: imageRole("role").notNull(),
    ord: integer("ord").notNull(),
  },
  (t) => [primaryKey({ columns: [t.turnId, t.imageId, t.role] }), index("turn_images_image_idx").on(t.imageId)],
);

export const uploads = pgTable(
  "uploads",
  {
    userId: uuid("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    imageId: text("image_id")
      .notNull()
      .references(() => images.id),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.imageId] }), index("uploads_image_idx").on(t.imageId)],
);
