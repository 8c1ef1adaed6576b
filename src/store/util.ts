/** Shared helpers: id checks, driver-error mapping, column selections. */
import { AppError, ErrorCode, isAppError } from "../errors.js";
import { images } from "./schema.js";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SHA256_RE = /^[0-9a-f]{64}$/;

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID_RE.test(value);
}

export function isSha256Hex(value: unknown): value is string {
  return typeof value === "string" && SHA256_RE.test(value);
}

function driverCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/**
 * SQLSTATEs of a server that is going away or not back yet: class 08 (connection exception),
 * 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now: a restart), 53300 (too many
 * connections, as when a restart's clients all reconnect at once).
 */
const UNREACHABLE_SQLSTATE = /^(08...|57P0[123]|53300)$/;
/** Socket errors of node-postgres when the server is down or drops the connection. */
const UNREACHABLE_ERRNO = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH"]);
/** node-postgres's own words for a connection it lost or could not open in time (no code). */
const UNREACHABLE_MESSAGE = /connection terminated|not queryable|timeout exceeded when trying to connect|connection is closed|Cannot use a pool after calling end/i;

/** Whether `error` (or a cause) says the database could not be reached, rather than refused the query. */
export function isUnreachable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (UNREACHABLE_SQLSTATE.test(code) || UNREACHABLE_ERRNO.has(code))) return true;
    if (e instanceof Error && UNREACHABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** How long a client is told to wait before retrying while the database is unreachable. */
export const UNREACHABLE_RETRY_MS = 1000;

/** Turns a driver error into an AppError; AppErrors pass through. */
export function wrapError(error: unknown, what: string): AppError {
  if (isAppError(error)) return error;
  if (isUnreachable(error)) {
    // A restart or a network fault: nothing is wrong with the request, and it may pass once the
    // database is back (the pool reconnects by itself; /readyz says when).
    return new AppError(ErrorCode.UNAVAILABLE, `${what}: the database is unreachable; retry shortly`, { cause: error, retryAfterMs: UNREACHABLE_RETRY_MS });
  }
  switch (driverCode(error)) {
    case "23503":
      return new AppError(ErrorCode.NOT_FOUND, `${what}: a referenced row does not exist`, { cause: error });
    case "23505":
      return new AppError(ErrorCode.CONFLICT, `${what}: already exists`, { cause: error });
    case "22P02":
    case "22003":
      return new AppError(ErrorCode.BAD_INPUT, `${what}: malformed value`, { cause: error });
    default:
      return new AppError(ErrorCode.INTERNAL, `${what} failed`, { cause: error });
  }
}

/** Wraps every method of a group so no raw driver error escapes. */
export function guarded<T extends Record<string, (...args: never[]) => Promise<unknown>>>(group: string, methods: T): T {
  const out = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(methods)) {
    out[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (error) {
        throw wrapError(error, `store.${group}.${name}`);
      }
    };
  }
  return out as T;
}

/** The image columns without the bytes. */
export const imageMetaColumns = {
  id: images.id,
  mime: images.mime,
  width: images.width,
  height: images.height,
  byteSize: images.byteSize,
  createdAt: images.createdAt,
  producingTurnId: images.producingTurnId,
  sourceImageId: images.sourceImageId,
  lineage: images.lineage,
};

export function checkPageSize(field: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
    throw AppError.badInput(field, "a non-negative integer", value);
  }
}
