/**
 * The one error type of UniPic Studio. Every failure a client can see carries an ErrorCode, which
 * the API maps to `extensions.code` (src/api/errors.ts) and HTTP routes map to a status.
 * Low-level errors are wrapped with context and kept as `cause`; they never reach clients.
 */

export enum ErrorCode {
  /** Input failed validation: `field`, `expected`, `got` say where and how. */
  BAD_INPUT = "BAD_INPUT",
  /** Missing, malformed, unknown or revoked API key. */
  UNAUTHENTICATED = "UNAUTHENTICATED",
  /** Authenticated, but the operation needs a role the caller lacks (e.g. admin). */
  FORBIDDEN = "FORBIDDEN",
  /** Does not exist, or belongs to someone else: the two are indistinguishable on purpose. */
  NOT_FOUND = "NOT_FOUND",
  /** The state forbids it (e.g. cancelling a finished turn). */
  CONFLICT = "CONFLICT",
  /** Query depth, complexity, page size, prompt length, body size or pixel count exceeded. */
  LIMIT_EXCEEDED = "LIMIT_EXCEEDED",
  /** The request body is larger than allowed. */
  PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE",
  /** The upload is not a PNG, JPEG or WebP image, or it is damaged. */
  UNSUPPORTED_MEDIA = "UNSUPPORTED_MEDIA",
  /** The inference queue is full; retry later. */
  QUEUE_FULL = "QUEUE_FULL",
  /** A per-user rate (turns a minute, turns waiting at once) is used up; `retryAfterMs` says when to try again. */
  RATE_LIMITED = "RATE_LIMITED",
  /** A per-user allowance (stored bytes) is used up; waiting does not help (`retryAfterMs` is null). */
  QUOTA_EXCEEDED = "QUOTA_EXCEEDED",
  /** The job was cancelled. */
  CANCELLED = "CANCELLED",
  /** A job failed; the engine is still healthy. */
  JOB_FAILED = "JOB_FAILED",
  /** The inference engine is dead (a session failed); every job fails until restart. */
  ENGINE_DEAD = "ENGINE_DEAD",
  /** A model folder or manifest is invalid. */
  MODEL_INVALID = "MODEL_INVALID",
  /** The server is starting or stopping, or its database is unreachable (restarting); `retryAfterMs` hints when to retry. */
  UNAVAILABLE = "UNAVAILABLE",
  /** A bug or an unexpected failure of a dependency; details stay in the server log. */
  INTERNAL = "INTERNAL",
}

/** HTTP status for each code, used by the plain HTTP routes (images, health). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  [ErrorCode.BAD_INPUT]: 400,
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.LIMIT_EXCEEDED]: 400,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 413,
  [ErrorCode.UNSUPPORTED_MEDIA]: 415,
  [ErrorCode.QUEUE_FULL]: 503,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.QUOTA_EXCEEDED]: 429,
  [ErrorCode.CANCELLED]: 409,
  [ErrorCode.JOB_FAILED]: 500,
  [ErrorCode.ENGINE_DEAD]: 503,
  [ErrorCode.MODEL_INVALID]: 500,
  [ErrorCode.UNAVAILABLE]: 503,
  [ErrorCode.INTERNAL]: 500,
};

export interface AppErrorOptions {
  /** The input field at fault, as the client named it (e.g. `input.text`). */
  field?: string;
  /** What was expected, in words (e.g. "at most 2000 characters"). */
  expected?: string;
  /** What was received, shortened (never a secret). */
  got?: string;
  /**
   * For RATE_LIMITED, QUOTA_EXCEEDED and UNAVAILABLE: milliseconds until the same request may
   * pass, or null when waiting alone will not make it pass.
   */
  retryAfterMs?: number | null;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly field?: string;
  readonly expected?: string;
  readonly got?: string;
  readonly retryAfterMs?: number | null;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.field = options.field;
    this.expected = options.expected;
    this.got = options.got;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /** A validation failure that names the field, what was expected and what came. */
  static badInput(field: string, expected: string, got: unknown): AppError {
    const shown = describeValue(got);
    return new AppError(ErrorCode.BAD_INPUT, `${field}: expected ${expected}, got ${shown}`, {
      field,
      expected,
      got: shown,
    });
  }

  static notFound(what: string, id?: string): AppError {
    return new AppError(ErrorCode.NOT_FOUND, id === undefined ? `${what} not found` : `${what} ${describeValue(id)} not found`);
  }

  /** A limit was passed; `got` describes the measured amount (e.g. "260 characters"). */
  static limit(field: string, expected: string, got: string | number): AppError {
    const shown = String(got);
    return new AppError(ErrorCode.LIMIT_EXCEEDED, `${field}: expected ${expected}, got ${shown}`, {
      field,
      expected,
      got: shown,
    });
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/** A short, printable rendering of a value for error messages (strings are cut at 60 chars). */
export function describeValue(value: unknown): string {
  if (typeof value === "string") {
    return value.length > 60 ? `"${value.slice(0, 57)}..." (${value.length} chars)` : JSON.stringify(value);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) {
    return String(value);
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`;
  return typeof value;
}

/** Thrown by exhaustive switches: reaching it is a bug the type checker should have caught. */
export class UnreachableCaseError extends Error {
  constructor(value: never) {
    super(`unreachable case: ${JSON.stringify(value)}`);
  }
}
