/**
 * OpenAI's error shape at the edge of the /v1 routes. Everything below them fails with the
 * project's one error type (AppError and its codes); this maps it, once, to
 * `{"error": {"message", "type", "param", "code"}}` with the status OpenAI's SDKs turn into their
 * usual classes (400 BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429
 * RateLimitError, 5xx InternalServerError).
 */
import type { ServerResponse } from "node:http";
import { AppError, ErrorCode, HTTP_STATUS } from "../../errors.js";
import { retryHeaders, sendJson } from "../http.js";

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Where OpenAI's status differs from the project's HTTP_STATUS. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  // OpenAI answers 400 for an image it cannot read; SDKs have no class for 415.
  [ErrorCode.UNSUPPORTED_MEDIA]: 400,
  // A full queue is "slow down and retry": SDKs back off and retry 429 by themselves.
  [ErrorCode.QUEUE_FULL]: 429,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.QUOTA_EXCEEDED]: 429,
};

/** OpenAI's own codes where one exists; otherwise the project's code, lower case. */
function openAICode(app: AppError): string {
  if (app.code === ErrorCode.UNAUTHENTICATED) return "invalid_api_key";
  if (app.code === ErrorCode.NOT_FOUND && app.field === "model") return "model_not_found";
  if (app.code === ErrorCode.RATE_LIMITED) return "rate_limit_exceeded";
  if (app.code === ErrorCode.QUOTA_EXCEEDED) return "insufficient_quota";
  return app.code.toLowerCase();
}

function errorType(status: number, code: ErrorCode): string {
  // OpenAI's type for a used-up allowance (its SDKs still see a 429, a RateLimitError).
  if (code === ErrorCode.QUOTA_EXCEEDED) return "insufficient_quota";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

/** The status and body for any error; INTERNAL messages are hidden in production. */
export function toOpenAIError(error: unknown, production: boolean): { status: number; code: ErrorCode; body: OpenAIErrorBody } {
  const app = error instanceof AppError ? error : undefined;
  const code = app?.code ?? ErrorCode.INTERNAL;
  const status = STATUS[code] ?? HTTP_STATUS[code];
  const hide = production && code === ErrorCode.INTERNAL;
  const message = hide || app === undefined ? (production ? "internal error" : String((error as Error)?.message ?? error)) : app.message;
  // The key travels in a header, which OpenAI does not name as a param.
  const param = app?.field === undefined || app.field === "authorization" ? null : app.field;
  return { status, code, body: { error: { message, type: errorType(status, code), param, code: app === undefined ? "internal" : openAICode(app) } } };
}

/** Answers with the error (or drops the connection when a reply has already begun). */
export function sendOpenAIError(res: ServerResponse, error: unknown, production: boolean): ErrorCode {
  const { status, code, body } = toOpenAIError(error, production);
  if (res.headersSent) {
    res.destroy();
    return code;
  }
  const app = error instanceof AppError ? error : undefined;
  const headers: Record<string, string> = { ...retryHeaders(app) };
  // SDKs retry every 429 unless told not to: a used-up allowance does not come back by retrying.
  if (code === ErrorCode.QUOTA_EXCEEDED) headers["x-should-retry"] = "false";
  // A body we refused to read may still be arriving: close the connection after answering.
  if (code === ErrorCode.PAYLOAD_TOO_LARGE) headers.connection = "close";
  sendJson(res, status, body, headers);
  return code;
}

/** The AppError for a turn that ended FAILED or CANCELLED, from its stored code and message. */
export function turnError(turn: { status: string; errorCode: string | null; errorMessage: string | null }): AppError {
  const code = turn.errorCode !== null && turn.errorCode in HTTP_STATUS ? (turn.errorCode as ErrorCode) : turn.status === "CANCELLED" ? ErrorCode.CANCELLED : ErrorCode.JOB_FAILED;
  return new AppError(code, turn.errorMessage ?? `the job ended ${turn.status}`);
}
