/** The OpenAI edge without a server: error mapping and when partial images are due. */
import { describe, expect, it } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";
import { toOpenAIError, turnError } from "../../src/api/openai/errors.js";
import { isPartialStep } from "../../src/api/openai/images.js";

describe("OpenAI error mapping", () => {
  it("gives the statuses OpenAI SDKs turn into their error classes", () => {
    const status = (code: ErrorCode) => toOpenAIError(new AppError(code, "x"), false).status;
    expect(status(ErrorCode.BAD_INPUT)).toBe(400);
    expect(status(ErrorCode.LIMIT_EXCEEDED)).toBe(400);
    expect(status(ErrorCode.UNSUPPORTED_MEDIA)).toBe(400);
    expect(status(ErrorCode.UNAUTHENTICATED)).toBe(401);
    expect(status(ErrorCode.NOT_FOUND)).toBe(404);
    expect(status(ErrorCode.PAYLOAD_TOO_LARGE)).toBe(413);
    expect(status(ErrorCode.QUEUE_FULL)).toBe(429);
    expect(status(ErrorCode.UNAVAILABLE)).toBe(503);
    expect(status(ErrorCode.ENGINE_DEAD)).toBe(503);
  });

  it("fills message, type, param and code", () => {
    expect(toOpenAIError(AppError.badInput("size", "one of 64x64", "1x1"), false).body).toEqual({
      error: { message: 'size: expected one of 64x64, got "1x1"', type: "invalid_request_error", param: "size", code: "bad_input" },
    });
    expect(toOpenAIError(new AppError(ErrorCode.QUEUE_FULL, "full", { field: "queue" }), false).body.error).toMatchObject({ type: "rate_limit_error", code: "queue_full" });
    expect(toOpenAIError(new AppError(ErrorCode.UNAUTHENTICATED, "no key", { field: "authorization" }), false).body.error).toMatchObject({ param: null, code: "invalid_api_key" });
    expect(toOpenAIError(new AppError(ErrorCode.NOT_FOUND, "no such model", { field: "model" }), false).body.error).toMatchObject({ param: "model", code: "model_not_found" });
  });

  it("hides unexpected failures in production", () => {
    expect(toOpenAIError(new Error("db password is hunter2"), true)).toMatchObject({ status: 500, body: { error: { message: "internal error", type: "server_error", code: "internal" } } });
    expect(toOpenAIError(new Error("boom"), false).body.error.message).toBe("boom");
  });

  it("turns a failed turn's stored code back into its error", () => {
    expect(turnError({ status: "FAILED", errorCode: "QUEUE_FULL", errorMessage: "full" })).toMatchObject({ code: ErrorCode.QUEUE_FULL, message: "full" });
    expect(turnError({ status: "CANCELLED", errorCode: null, errorMessage: null }).code).toBe(ErrorCode.CANCELLED);
    expect(turnError({ status: "FAILED", errorCode: "SOMETHING_NEW", errorMessage: "?" }).code).toBe(ErrorCode.JOB_FAILED);
  });
});

describe("partial image steps", () => {
  const due = (total: number, wanted: number, steps: number[] = Array.from({ length: total }, (_, i) => i + 1)) => {
    const out: number[] = [];
    for (const step of steps) if (isPartialStep(step, total, out.length, wanted)) out.push(step);
    return out;
  };

  it("spreads at most N partials over the MAR steps, never on the last one", () => {
    expect(due(16, 3)).toEqual([4, 8, 12]);
    expect(due(16, 2)).toEqual([6, 11]);
    expect(due(16, 1)).toEqual([8]);
    expect(due(16, 0)).toEqual([]);
    expect(due(2, 3)).toEqual([1]);
    expect(due(1, 3)).toEqual([]);
  });

  it("still sends a partial when the step it was due at was skipped (latest-wins previews)", () => {
    expect(due(16, 3, [2, 5, 13, 14, 16])).toEqual([5, 13, 14]);
  });
});
