/** Users and API keys. Only the sha256 of a key is stored, plus its first 8 chars for display. */
import { createHash, randomBytes } from "node:crypto";
import { and, asc, count, eq, isNull, sql } from "drizzle-orm";
import { AppError } from "../errors.js";
import type { Orm } from "./db.js";
import { apiKeys, users } from "./schema.js";
import type { Store, UserRow } from "./types.js";
import { guarded, isUuid } from "./util.js";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const API_KEY_PREFIX = "upk_";
const KEY_BODY_LENGTH = 40;

/** "upk_" + 40 base62 chars, unbiased (rejection sampling over crypto.randomBytes). */
export function generateApiKey(): string {
  let body = "";
  while (body.length < KEY_BODY_LENGTH) {
    for (const byte of randomBytes(64)) {
      if (byte < 248 && body.length < KEY_BODY_LENGTH) body += BASE62[byte % 62];
    }
  }
  return API_KEY_PREFIX + body;
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Held while the first admin is created, so nodes starting together on one database make one. */
const FIRST_ADMIN_LOCK = 0x756e6970; // "unip"

const userColumns = { id: users.id, name: users.name, isAdmin: users.isAdmin, createdAt: users.createdAt };

export function usersRepo(orm: Orm): Store["users"] {
  async function insertKey(db: Pick<Orm, "insert">, userId: string): Promise<string> {
    const key = generateApiKey();
    await db.insert(apiKeys).values({ userId, keyHash: hashApiKey(key), prefix: key.slice(0, 8) });
    return key;
  }

  return guarded("users", {
    async create(name: string, opts?: { isAdmin?: boolean }) {
      if (typeof name !== "string" || name.trim() === "") throw AppError.badInput("name", "a non-empty name", name);
      return orm.transaction(async (tx) => {
        const [user] = await tx
          .insert(users)
          .values({ name, isAdmin: opts?.isAdmin ?? false })
          .returning(userColumns);
        const apiKey = await insertKey(tx, user!.id);
        return { user: user as UserRow, apiKey };
      });
    },

    async createFirstAdmin(name: string) {
      return orm.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${FIRST_ADMIN_LOCK})`);
        const [row] = await tx.select({ n: count() }).from(users);
        if (Number(row?.n ?? 0) > 0) return null;
        const [user] = await tx.insert(users).values({ name, isAdmin: true }).returning(userColumns);
        return insertKey(tx, user!.id);
      });
    },

    async count() {
      const [row] = await orm.select({ n: count() }).from(users);
      return Number(row?.n ?? 0);
    },

    async byApiKey(key: string) {
      if (typeof key !== "string" || !key.startsWith(API_KEY_PREFIX)) return null;
      const rows = await orm
        .select(userColumns)
        .from(apiKeys)
        .innerJoin(users, eq(users.id, apiKeys.userId))
        .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)))
        .limit(1);
      return rows[0] ?? null;
    },

    async byId(id: string) {
      if (!isUuid(id)) return null;
      const rows = await orm.select(userColumns).from(users).where(eq(users.id, id)).limit(1);
      return rows[0] ?? null;
    },

    async byName(name: string) {
      if (typeof name !== "string") return null;
      const rows = await orm
        .select(userColumns)
        .from(users)
        .where(eq(users.name, name))
        .orderBy(asc(users.createdAt), asc(users.id))
        .limit(1);
      return rows[0] ?? null;
    },

    async issueKey(userId: string) {
      if (!isUuid(userId)) throw AppError.notFound("user", userId);
      const found = await orm.select({ id: users.id }).from(users).where(eq(users.id, userId)).limit(1);
      if (found.length === 0) throw AppError.notFound("user", userId);
      return insertKey(orm, userId);
    },

    async revokeKey(key: string) {
      if (typeof key !== "string" || key === "") return false;
      const rows = await orm
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)))
        .returning({ id: apiKeys.id });
      return rows.length > 0;
    },

    async revokeAllKeys(userId: string) {
      if (!isUuid(userId)) return 0;
      const rows = await orm
        .update(apiKeys)
        .set({ revokedAt: new Date() })
        .where(and(eq(apiKeys.userId, userId), isNull(apiKeys.revokedAt)))
        .returning({ id: apiKeys.id });
      return rows.length;
    },
  });
}
