/** Content-addressed images (id = sha256 hex of the bytes) and who may see them. */
import { createHash } from "node:crypto";
import { and, desc, eq, sql } from "drizzle-orm";
import { AppError, ErrorCode } from "../errors.js";
import type { Orm } from "./db.js";
import { conversations, images, turnImages, turns, uploads } from "./schema.js";
import type { ImageMeta, NewImage, Store } from "./types.js";
import { guarded, imageMetaColumns, isSha256Hex, isUuid } from "./util.js";
import { visibleCondition } from "./visibility.js";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function imagesRepo(orm: Orm): Store["images"] {
  async function meta(id: string): Promise<ImageMeta | null> {
    if (!isSha256Hex(id)) return null;
    const rows = await orm.select(imageMetaColumns).from(images).where(eq(images.id, id)).limit(1);
    return rows[0] ?? null;
  }

  async function visibleTo(userId: string, id: string): Promise<boolean> {
    if (!isUuid(userId) || !isSha256Hex(id)) return false;
    const rows = await orm.select({ v: sql<boolean>`${visibleCondition(orm, userId, id)}` }).from(sql`(select 1) as one`);
    return rows[0]?.v === true;
  }

  return guarded("images", {
    async put(img: NewImage) {
      if (!(img.bytes instanceof Uint8Array)) throw AppError.badInput("bytes", "a Uint8Array", img.bytes);
      const actual = sha256Hex(img.bytes);
      if (img.id !== actual) throw AppError.badInput("id", `the sha256 of the bytes (${actual})`, img.id);
      if (img.producingTurnId != null && !isUuid(img.producingTurnId)) throw AppError.notFound("turn", img.producingTurnId);
      for (const k of ["width", "height"] as const) {
        if (!Number.isInteger(img[k]) || img[k] < 0) throw AppError.badInput(k, "a non-negative integer", img[k]);
      }
      await orm
        .insert(images)
        .values({
          id: img.id,
          bytes: img.bytes,
          mime: img.mime,
          width: img.width,
          height: img.height,
          byteSize: img.bytes.byteLength,
          producingTurnId: img.producingTurnId ?? null,
          sourceImageId: img.sourceImageId ?? null,
          lineage: img.lineage ?? {},
        })
        .onConflictDoNothing({ target: images.id });
      const stored = await meta(img.id);
      if (!stored) throw new AppError(ErrorCode.INTERNAL, `image ${img.id} vanished after insert`);
      return stored;
    },

    async grantUpload(userId: string, imageId: string) {
      if (!isUuid(userId)) throw AppError.notFound("user", userId);
      if (!isSha256Hex(imageId)) throw AppError.notFound("image", imageId);
      await orm.insert(uploads).values({ userId, imageId }).onConflictDoNothing();
    },

    meta,
    visibleTo,

    async bytes(userId: string, id: string) {
      if (!isUuid(userId) || !isSha256Hex(id)) return null;
      const rows = await orm
        .select({ meta: imageMetaColumns, bytes: images.bytes })
        .from(images)
        .where(and(eq(images.id, id), visibleCondition(orm, userId, images.id)))
        .limit(1);
      return rows[0] ?? null;
    },

    async bytesHeldBy(userId: string) {
      if (!isUuid(userId)) return 0;
      // The images the user can see (visibility.ts), each counted once: uploads and whatever is
      // attached to a turn of their conversations (inputs and outputs).
      const held = sql`(select ${uploads.imageId} as id from ${uploads} where ${uploads.userId} = ${userId}
        union select ${turnImages.imageId} from ${turnImages}
          join ${turns} on ${turns.id} = ${turnImages.turnId}
          join ${conversations} on ${conversations.id} = ${turns.conversationId}
          where ${conversations.ownerId} = ${userId})`;
      const rows = await orm
        .select({ n: sql<string>`coalesce(sum(${images.byteSize}), 0)` })
        .from(images)
        .where(sql`${images.id} in ${held}`);
      return Number(rows[0]?.n ?? 0);
    },

    async latestInConversation(conversationId: string) {
      if (!isUuid(conversationId)) return null;
      const rows = await orm
        .select(imageMetaColumns)
        .from(turnImages)
        .innerJoin(turns, eq(turns.id, turnImages.turnId))
        .innerJoin(images, eq(images.id, turnImages.imageId))
        .where(eq(turns.conversationId, conversationId))
        .orderBy(desc(turns.position), desc(turnImages.ord), desc(turnImages.role))
        .limit(1);
      return rows[0] ?? null;
    },
  });
}
