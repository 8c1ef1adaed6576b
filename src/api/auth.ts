/**
 * API-key authentication, the same for HTTP (Authorization header) and graphql-ws
 * (connectionParams.authorization), and access to /metrics. Keys are random (40 base62
 * characters, about 238 bits) and stored only as their SHA-256 (src/store/users.ts); a key is
 * found by its digest, so no comparison ever sees a stored key. The one plain secret,
 * METRICS_TOKEN, is compared in constant time. See docs/security.md.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { AppError, ErrorCode } from "../errors.js";
import type { Store, UserRow } from "../store/index.js";
import type { Services } from "../turns/service.js";

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

/** Compares two secrets in time that depends on neither (their digests, of equal length). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given, "utf8").digest();
  const b = createHash("sha256").update(expected, "utf8").digest();
  return timingSafeEqual(a, b);
}

/**
 * May this request read /metrics? METRICS_ACCESS=open: anyone. Otherwise a bearer METRICS_TOKEN
 * (when set) or an admin's API key: UNAUTHENTICATED without either, FORBIDDEN for a user's key.
 */
export async function authorizeMetrics(req: IncomingMessage, services: Services): Promise<void> {
  const { metricsAccess, metricsToken } = services.config;
  if (metricsAccess === "open") return;
  const key = bearerKey(req.headers.authorization);
  if (key !== null && metricsToken !== null && secretsEqual(key, metricsToken)) return;
  const user = await authenticate(services.store, req.headers.authorization);
  if (!user.isAdmin) {
    throw new AppError(ErrorCode.FORBIDDEN, "/metrics needs an admin's API key or METRICS_TOKEN (METRICS_ACCESS=admin)", {
      field: "authorization",
      expected: "an admin's API key or METRICS_TOKEN",
      got: "a user's API key",
    });
  }
}
