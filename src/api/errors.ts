/**
 * The one mapper from any error to a GraphQL error with `extensions.code`. It never throws.
 * AppErrors keep their message and field details; GraphQL's own validation and parse errors keep
 * theirs; anything else is INTERNAL, and in production its message is hidden (it is logged).
 */
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { AppError, ErrorCode, HTTP_STATUS } from "../errors.js";

function findAppError(error: unknown): AppError | undefined {
  let current: unknown = error;
  for (let i = 0; i < 5 && current !== undefined && current !== null; i++) {
    if (current instanceof AppError) return current;
    current = current instanceof GraphQLError ? current.originalError : (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** How errors are shown: production hides internal messages; `log` gets what is hidden. */
export interface FormatOptions {
  production: boolean;
  log?: (error: unknown) => void;
}

export function formatError(formatted: GraphQLFormattedError, error: unknown, options: FormatOptions): GraphQLFormattedError {
  const app = findAppError(error);
  if (app !== undefined) {
    const extensions: Record<string, unknown> = { code: app.code };
    if (app.field !== undefined) extensions.field = app.field;
    if (app.expected !== undefined) extensions.expected = app.expected;
    if (app.got !== undefined) extensions.got = app.got;
    if (app.retryAfterMs !== undefined) extensions.retryAfterMs = app.retryAfterMs;
    if (app.code === ErrorCode.INTERNAL) {
      options.log?.(error);
      if (options.production) return { message: "internal error", locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.INTERNAL } };
    }
    return { message: app.message, locations: formatted.locations, path: formatted.path, extensions };
  }
  const code = formatted.extensions?.code;
  if (typeof code === "string" && code !== "INTERNAL_SERVER_ERROR") {
    // GraphQL's and Apollo's own client errors (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED,
    // BAD_USER_INPUT, ...) are safe to show; drop the stack trace Apollo adds in development.
    const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
    return { ...formatted, extensions };
  }
  options.log?.(error);
  if (options.production) return { message: "internal error", locations: formatted.locations, path: formatted.path, extensions: { code: ErrorCode.INTERNAL } };
  const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
  return { ...formatted, extensions: { ...extensions, code: ErrorCode.INTERNAL } };
}

/** A GraphQLError for errors raised outside resolvers (auth, limits), with the HTTP status Apollo should use. */
export function toGraphQLError(error: AppError): GraphQLError {
  return new GraphQLError(error.message, {
    originalError: error,
    extensions: { code: error.code, http: { status: HTTP_STATUS[error.code] } },
  });
}
