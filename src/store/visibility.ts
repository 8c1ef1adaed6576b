/** The visibility rule: user U sees image I iff U uploaded I or I is attached to a turn of U's conversation. */
import { and, eq, exists, or, type SQL } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { Orm } from "./db.js";
import { conversations, turnImages, turns, uploads } from "./schema.js";

/** A boolean SQL condition: `imageId` (a column or value) is visible to `userId`. */
export function visibleCondition(orm: Pick<Orm, "select">, userId: string, imageId: string | AnyPgColumn): SQL {
  return or(
    exists(
      orm
        .select({ one: uploads.imageId })
        .from(uploads)
        .where(and(eq(uploads.userId, userId), eq(uploads.imageId, imageId))),
    ),
    exists(
      orm
        .select({ one: turnImages.imageId })
        .from(turnImages)
        .innerJoin(turns, eq(turns.id, turnImages.turnId))
        .innerJoin(conversations, eq(conversations.id, turns.conversationId))
        .where(and(eq(turnImages.imageId, imageId), eq(conversations.ownerId, userId))),
    ),
  )!;
}
