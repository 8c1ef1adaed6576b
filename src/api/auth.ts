/** API-key authentication, the same for HTTP (Authorization header) and graphql-ws (connectionParams.authorization). */
import { AppError, ErrorCode } from "../errors.js";
import type { Store, UserRow } from "../store/index.js";

/** Extracts the key from "Bearer KEY" (the scheme is case-insensitive; a bare key is accepted too). */
export function bearerKey(header: unknown): string | null {
  if (typeof header !== "string") return null;
  const match = /^\s*(?:bearer\s+)?(\S+)\s*$/i.exec(header);
  return match === null ? null : match[1]!;
}

/** The user behind the key; UNAUTHENTICATED for a missing, unknown or revoked key. */
export async function authenticate(store: Store, header: unknown): Promise<UserRow> {
  const key = bearerKey(header);
  if (key === null) {
    throw new AppError(ErrorCode.UNAUTHENTICATED, "missing API key: send the header `Authorization: Bearer KEY`", {
      field: "authorization",
      expected: "Bearer KEY",
      got: header === undefined ? "nothing" : "a malformed header",
    });
  }
  const user = await store.users.byApiKey(key);
  if (user === null) {
    throw new AppError(ErrorCode.UNAUTHENTICATED, "unknown or revoked API key", { field: "authorization", expected: "a valid API key", got: `a key starting ${key.slice(0, 4)}` });
  }
  return user;
}
