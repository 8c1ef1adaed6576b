/**
 * Opaque global ids (Relay `Node`) and connection cursors. A global id is base64url("Type:key");
 * clients must treat both as opaque strings. Decoding never throws a low-level error: bad input
 * becomes BAD_INPUT naming the field.
 */
import { AppError } from "../errors.js";

export type NodeTypeName = "User" | "Conversation" | "Turn" | "Image";
const NODE_TYPES: readonly NodeTypeName[] = ["User", "Conversation", "Turn", "Image"];

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SHA256_RE = /^[0-9a-f]{64}$/;

export function toGlobalId(type: NodeTypeName, key: string): string {
  return Buffer.from(`${type}:${key}`, "utf8").toString("base64url");
}

/** Decodes any global id; null when it is not one of ours (unknown ids are NOT_FOUND upstream). */
export function parseGlobalId(id: string): { type: NodeTypeName; key: string } | null {
  if (typeof id !== "string" || id.length === 0 || id.length > 200 || !/^[A-Za-z0-9_-]+$/.test(id)) return null;
  const text = Buffer.from(id, "base64url").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) return null;
  const type = text.slice(0, colon) as NodeTypeName;
  const key = text.slice(colon + 1);
  if (!NODE_TYPES.includes(type)) return null;
  const valid = type === "Image" ? SHA256_RE.test(key) : UUID_RE.test(key);
  return valid ? { type, key } : null;
}

/**
 * The key of a global id of the expected type. A malformed id is BAD_INPUT; a well-formed id of
 * another type is NOT_FOUND (it names nothing of that type), like an id that does not exist.
 */
export function keyOf(expected: NodeTypeName, id: string, field: string): string {
  const parsed = parseGlobalId(id);
  if (parsed === null) throw AppError.badInput(field, `a ${expected} id`, id);
  if (parsed.type !== expected) throw AppError.notFound(expected, id);
  return parsed.key;
}

/** Cursor of a turn: its position in the conversation. */
export function turnCursor(position: number): string {
  return Buffer.from(`turn:${position}`, "utf8").toString("base64url");
}

export function parseTurnCursor(cursor: string, field: string): number {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const match = /^turn:(\d{1,9})$/.exec(text);
  if (match === null) throw AppError.badInput(field, "a cursor from this connection", cursor);
  return Number(match[1]);
}

/** Cursor of a conversation: its (createdAt, id) sort key. */
export function conversationCursor(createdAt: Date, id: string): string {
  return Buffer.from(`conv:${createdAt.toISOString()}:${id}`, "utf8").toString("base64url");
}

export function parseConversationCursor(cursor: string, field: string): { createdAt: Date; id: string } {
  const text = Buffer.from(cursor, "base64url").toString("utf8");
  const match = /^conv:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z):([0-9a-f-]{36})$/i.exec(text);
  const createdAt = match === null ? null : new Date(match[1]!);
  if (match === null || createdAt === null || Number.isNaN(createdAt.getTime()) || !UUID_RE.test(match[2]!)) {
    throw AppError.badInput(field, "a cursor from this connection", cursor);
  }
  return { createdAt, id: match[2]! };
}

export function isSha256(text: string): boolean {
  return SHA256_RE.test(text);
}
