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

/** Turns a driver error into an AppError; AppErrors pass through. */
export function wrapError(error: unknown, what: string): AppError {
  if (isAppError(error)) return error;
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
