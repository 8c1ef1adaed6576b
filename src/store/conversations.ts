/** Conversations, always scoped to their owner. Keyset paging, newest first. */
import { and, desc, eq, inArray, notInArray, sql } from "drizzle-orm";
import { AppError } from "../errors.js";
import type { Orm } from "./db.js";
import { conversations, turnImages, turns, uploads } from "./schema.js";
import type { ConversationCursor, ConversationRow, Store } from "./types.js";
import { checkPageSize, guarded, isUuid } from "./util.js";

const conversationColumns = {
  id: conversations.id,
  ownerId: conversations.ownerId,
  title: conversations.title,
  createdAt: conversations.createdAt,
  updatedAt: conversations.updatedAt,
};

/** (created_at, id) strictly older than the cursor, in (created_at desc, id desc) order. */
function olderThan(c: ConversationCursor) {
  return sql`(${conversations.createdAt}, ${conversations.id}) < (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid)`;
}

function notOlderThan(c: ConversationCursor) {
  return sql`(${conversations.createdAt}, ${conversations.id}) >= (${c.createdAt.toISOString()}::timestamptz, ${c.id}::uuid)`;
}

export function conversationsRepo(orm: Orm): Store["conversations"] {
  return guarded("conversations", {
    async create(ownerId: string, title: string) {
      if (!isUuid(ownerId)) throw AppError.notFound("user", ownerId);
      const [row] = await orm.insert(conversations).values({ ownerId, title }).returning(conversationColumns);
      return row as ConversationRow;
    },

    async get(ownerId: string, id: string) {
      if (!isUuid(ownerId) || !isUuid(id)) return null;
      const rows = await orm
        .select(conversationColumns)
        .from(conversations)
        .where(and(eq(conversations.id, id), eq(conversations.ownerId, ownerId)))
        .limit(1);
      return rows[0] ?? null;
    },

    async list(ownerId: string, page: { first: number; after?: ConversationCursor }) {
      checkPageSize("first", page.first);
      const empty = { items: [], hasNextPage: false, hasPreviousPage: false };
      if (!isUuid(ownerId)) return empty;
      const after = page.after;
      if (after !== undefined && (!isUuid(after.id) || !(after.createdAt instanceof Date) || isNaN(after.createdAt.getTime()))) {
        throw AppError.badInput("after", "a valid conversation cursor", after.id);
      }
      const mine = eq(conversations.ownerId, ownerId);
      const rows = await orm
        .select(conversationColumns)
        .from(conversations)
        .where(after ? and(mine, olderThan(after)) : mine)
        .orderBy(desc(conversations.createdAt), desc(conversations.id))
        .limit(page.first + 1);
      let hasPreviousPage = false;
      if (after) {
        const prev = await orm
          .select({ id: conversations.id })
          .from(conversations)
          .where(and(mine, notOlderThan(after)))
          .limit(1);
        hasPreviousPage = prev.length > 0;
      }
      return { items: rows.slice(0, page.first), hasNextPage: rows.length > page.first, hasPreviousPage };
    },

    async rename(ownerId: string, id: string, title: string) {
      if (!isUuid(ownerId) || !isUuid(id)) return null;
      const rows = await orm
        .update(conversations)
        .set({ title, updatedAt: sql`now()` })
        .where(and(eq(conversations.id, id), eq(conversations.ownerId, ownerId)))
        .returning(conversationColumns);
      return rows[0] ?? null;
    },

    async delete(ownerId: string, id: string) {
      if (!isUuid(ownerId) || !isUuid(id)) return false;
      return orm.transaction(async (tx) => {
        const own = await tx
          .select({ id: conversations.id })
          .from(conversations)
          .where(and(eq(conversations.id, id), eq(conversations.ownerId, ownerId)))
          .for("update");
        if (own.length === 0) return false;
        const attached = await tx
          .selectDistinct({ imageId: turnImages.imageId })
          .from(turnImages)
          .innerJoin(turns, eq(turns.id, turnImages.turnId))
          .where(eq(turns.conversationId, id));
        await tx.delete(conversations).where(eq(conversations.id, id));
        const imageIds = attached.map((r) => r.imageId);
        if (imageIds.length > 0) {
          // Keep the grant only where the image is still attached to another conversation of the owner.
          const stillAttached = tx
            .select({ imageId: turnImages.imageId })
            .from(turnImages)
            .innerJoin(turns, eq(turns.id, turnImages.turnId))
            .innerJoin(conversations, eq(conversations.id, turns.conversationId))
            .where(and(eq(conversations.ownerId, ownerId), inArray(turnImages.imageId, imageIds)));
          await tx
            .delete(uploads)
            .where(and(eq(uploads.userId, ownerId), inArray(uploads.imageId, imageIds), notInArray(uploads.imageId, stillAttached)));
        }
        return true;
      });
    },

    async touch(id: string) {
      if (!isUuid(id)) return;
      await orm.update(conversations).set({ updatedAt: sql`now()` }).where(eq(conversations.id, id));
    },
  });
}
