/** Turns: messages, their jobs' status, and the images attached to them. */
import { and, asc, count, desc, eq, gt, gte, inArray, lt, lte, sql, type SQL } from "drizzle-orm";
import { AppError } from "../errors.js";
import type { Orm } from "./db.js";
import { conversations, images, turnImages, turns } from "./schema.js";
import { TURN_STATUSES, type ImageRole, type NewUserTurn, type Page, type Store, type TurnPageArgs, type TurnRow, type TurnStatus } from "./types.js";
import { checkPageSize, guarded, imageMetaColumns, isSha256Hex, isUuid } from "./util.js";
import { visibleCondition } from "./visibility.js";

/** The statuses a turn may move to `to` from (compare-and-set). Terminal states are final. */
export const ALLOWED_FROM: Record<TurnStatus, TurnStatus[]> = {
  QUEUED: ["RUNNING"],
  RUNNING: ["QUEUED"],
  COMPLETED: ["RUNNING"],
  FAILED: ["QUEUED", "RUNNING"],
  CANCELLED: ["QUEUED", "RUNNING"],
};

export function turnsRepo(orm: Orm): Store["turns"] {
  async function page(conversationId: string, args: TurnPageArgs): Promise<Page<TurnRow>> {
    checkPageSize("first", args.first);
    checkPageSize("last", args.last);
    for (const k of ["after", "before"] as const) {
      if (args[k] !== undefined && !Number.isInteger(args[k])) throw AppError.badInput(k, "a turn position", args[k]);
    }
    if (!isUuid(conversationId)) return { items: [], hasNextPage: false, hasPreviousPage: false };
    const inConv = eq(turns.conversationId, conversationId);
    const range: SQL[] = [inConv];
    if (args.after !== undefined) range.push(gt(turns.position, args.after));
    if (args.before !== undefined) range.push(lt(turns.position, args.before));
    const where = and(...range);
    let items: TurnRow[];
    let moreAfter = false; // rows in range beyond the page, towards the end
    let moreBefore = false; // rows in range beyond the page, towards the start
    if (args.last !== undefined && args.first === undefined) {
      const rows = await orm.select().from(turns).where(where).orderBy(desc(turns.position)).limit(args.last + 1);
      moreBefore = rows.length > args.last;
      items = rows.slice(0, args.last).reverse();
    } else {
      const q = orm.select().from(turns).where(where).orderBy(asc(turns.position));
      const rows = args.first === undefined ? await q : await q.limit(args.first + 1);
      moreAfter = args.first !== undefined && rows.length > args.first;
      items = args.first === undefined ? rows : rows.slice(0, args.first);
      if (args.last !== undefined && items.length > args.last) {
        moreBefore = true;
        items = items.slice(items.length - args.last);
      }
    }
    const existsWhere = async (cond: SQL) =>
      (await orm.select({ id: turns.id }).from(turns).where(and(inConv, cond)).limit(1)).length > 0;
    const hasNextPage = moreAfter || (args.before !== undefined && (await existsWhere(gte(turns.position, args.before))));
    const hasPreviousPage = moreBefore || (args.after !== undefined && (await existsWhere(lte(turns.position, args.after))));
    return { items, hasNextPage, hasPreviousPage };
  }

  return guarded("turns", {
    async sendMessage(ownerId: string, conversationId: string, user: NewUserTurn) {
      if (!isUuid(ownerId) || !isUuid(conversationId)) return null;
      const imageIds = [...new Set(user.imageIds)];
      const history = user.history ?? [];
      const replies = user.replies ?? [{ seed: user.seed, params: user.params }];
      if (replies.length === 0) throw AppError.badInput("replies", "at least one reply", replies);
      const allImageIds = [...new Set([...imageIds, ...history.flatMap((h) => h.imageIds)])];
      for (const id of allImageIds) if (!isSha256Hex(id)) throw AppError.notFound("image", id);
      return orm.transaction(async (tx) => {
        const own = await tx
          .select({ id: conversations.id })
          .from(conversations)
          .where(and(eq(conversations.id, conversationId), eq(conversations.ownerId, ownerId)))
          .for("update");
        if (own.length === 0) return null;
        if (allImageIds.length > 0) {
          const visible = await tx
            .select({ id: images.id })
            .from(images)
            .where(and(inArray(images.id, allImageIds), visibleCondition(tx, ownerId, images.id)));
          const seen = new Set(visible.map((r) => r.id));
          const missing = allImageIds.find((id) => !seen.has(id));
          if (missing !== undefined) throw AppError.notFound("image", missing);
        }
        const [last] = await tx
          .select({ n: sql<number>`coalesce(max(${turns.position}), 0)`.mapWith(Number) })
          .from(turns)
          .where(eq(turns.conversationId, conversationId));
        let next = (last?.n ?? 0) + 1;
        const attach = async (turnId: string, ids: readonly string[]) => {
          const unique = [...new Set(ids)];
          if (unique.length === 0) return;
          await tx.insert(turnImages).values(unique.map((imageId, ord) => ({ turnId, imageId, role: "input" as const, ord })));
        };
        // Earlier messages: finished turns, each assistant one answering the user turn before it.
        let lastUser: string | null = null;
        for (const h of history) {
          const replyTo: string | null = h.role === "assistant" ? lastUser : null;
          const [row] = await tx
            .insert(turns)
            .values({ conversationId, position: next++, role: h.role, kind: user.kind, task: user.task, text: h.text, status: "COMPLETED", replyTo })
            .returning({ id: turns.id });
          const id: string = row!.id;
          if (h.role === "user") lastUser = id;
          await attach(id, h.imageIds);
        }
        const common = { conversationId, kind: user.kind, task: user.task };
        const [userTurn] = await tx
          .insert(turns)
          .values({ ...common, params: user.params ?? {}, seed: user.seed ?? null, position: next++, role: "user", text: user.text, status: "COMPLETED" })
          .returning();
        const assistants: TurnRow[] = [];
        for (const reply of replies) {
          const [assistant] = await tx
            .insert(turns)
            .values({ ...common, params: reply.params ?? {}, seed: reply.seed ?? null, position: next++, role: "assistant", text: "", status: "QUEUED", replyTo: userTurn!.id })
            .returning();
          assistants.push(assistant!);
        }
        await attach(userTurn!.id, imageIds);
        await tx.update(conversations).set({ updatedAt: sql`now()` }).where(eq(conversations.id, conversationId));
        return { user: userTurn!, assistant: assistants[0]!, replies: assistants };
      });
    },

    async get(ownerId: string, id: string) {
      if (!isUuid(ownerId) || !isUuid(id)) return null;
      const rows = await orm
        .select({ turn: turns })
        .from(turns)
        .innerJoin(conversations, eq(conversations.id, turns.conversationId))
        .where(and(eq(turns.id, id), eq(conversations.ownerId, ownerId)))
        .limit(1);
      return rows[0]?.turn ?? null;
    },

    async getById(id: string) {
      if (!isUuid(id)) return null;
      const rows = await orm.select().from(turns).where(eq(turns.id, id)).limit(1);
      return rows[0] ?? null;
    },

    async ownerOf(turnId: string) {
      if (!isUuid(turnId)) return null;
      const rows = await orm
        .select({ ownerId: conversations.ownerId })
        .from(turns)
        .innerJoin(conversations, eq(conversations.id, turns.conversationId))
        .where(eq(turns.id, turnId))
        .limit(1);
      return rows[0]?.ownerId ?? null;
    },

    page,

    async count(conversationId: string) {
      if (!isUuid(conversationId)) return 0;
      const [row] = await orm.select({ n: count() }).from(turns).where(eq(turns.conversationId, conversationId));
      return Number(row?.n ?? 0);
    },

    async setStatus(id: string, to: TurnStatus, extra?: { errorCode?: string; errorMessage?: string; text?: string }) {
      if (!isUuid(id)) return null;
      const from = ALLOWED_FROM[to];
      if (from === undefined) throw AppError.badInput("status", TURN_STATUSES.join(" | "), to);
      const times =
        to === "RUNNING"
          ? { startedAt: sql`now()` }
          : to === "QUEUED"
            ? { startedAt: null, finishedAt: null }
            : { finishedAt: sql`now()` };
      const rows = await orm
        .update(turns)
        .set({
          status: to,
          ...times,
          ...(extra?.errorCode !== undefined ? { errorCode: extra.errorCode } : {}),
          ...(extra?.errorMessage !== undefined ? { errorMessage: extra.errorMessage } : {}),
          ...(extra?.text !== undefined ? { text: extra.text } : {}),
        })
        .where(and(eq(turns.id, id), inArray(turns.status, from)))
        .returning();
      return rows[0] ?? null;
    },

    async unfinished() {
      return orm
        .select()
        .from(turns)
        .where(and(eq(turns.role, "assistant"), inArray(turns.status, ["QUEUED", "RUNNING"])))
        .orderBy(asc(turns.createdAt), asc(turns.position), asc(turns.id));
    },

    async activeCount(ownerId: string) {
      if (!isUuid(ownerId)) return 0;
      const [row] = await orm
        .select({ n: count() })
        .from(turns)
        .innerJoin(conversations, eq(conversations.id, turns.conversationId))
        .where(and(eq(conversations.ownerId, ownerId), eq(turns.role, "assistant"), inArray(turns.status, ["QUEUED", "RUNNING"])));
      return Number(row?.n ?? 0);
    },

    async images(turnId: string) {
      if (!isUuid(turnId)) return [];
      const rows = await orm
        .select({ image: imageMetaColumns, role: turnImages.role, ord: turnImages.ord })
        .from(turnImages)
        .innerJoin(images, eq(images.id, turnImages.imageId))
        .where(eq(turnImages.turnId, turnId))
        .orderBy(asc(turnImages.role), asc(turnImages.ord));
      return rows;
    },

    async attachImage(turnId: string, imageId: string, role: ImageRole, ord: number) {
      if (!isUuid(turnId)) throw AppError.notFound("turn", turnId);
      if (!isSha256Hex(imageId)) throw AppError.notFound("image", imageId);
      if (role !== "input" && role !== "output") throw AppError.badInput("role", "input | output", role);
      if (!Number.isInteger(ord)) throw AppError.badInput("ord", "an integer", ord);
      await orm
        .insert(turnImages)
        .values({ turnId, imageId, role, ord })
        .onConflictDoUpdate({ target: [turnImages.turnId, turnImages.imageId, turnImages.role], set: { ord } });
    },

    async countByStatus() {
      const rows = await orm
        .select({ status: turns.status, n: count() })
        .from(turns)
        .where(eq(turns.role, "assistant"))
        .groupBy(turns.status);
      const out = Object.fromEntries(TURN_STATUSES.map((s) => [s, 0])) as Record<TurnStatus, number>;
      for (const r of rows) out[r.status] = Number(r.n);
      return out;
    },
  });
}
