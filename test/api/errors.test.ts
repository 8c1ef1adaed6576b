import { GraphQLError } from "graphql";
import { describe, expect, it } from "vitest";
import { formatError } from "../../src/api/errors.js";
import { AppError, ErrorCode } from "../../src/errors.js";

const wrap = (error: Error): [ReturnType<GraphQLError["toJSON"]>, unknown] => {
  const gql = new GraphQLError(error.message, { originalError: error, path: ["x"] });
  return [{ ...gql.toJSON(), extensions: { code: "INTERNAL_SERVER_ERROR", stacktrace: ["at secret.ts:1"] } }, gql];
};

describe("formatError", () => {
  it("keeps an AppError's code and field details", () => {
    const [formatted, raw] = wrap(AppError.badInput("input.text", "a question", ""));
    expect(formatError(formatted, raw, { production: true })).toMatchObject({
      message: 'input.text: expected a question, got ""',
      extensions: { code: "BAD_INPUT", field: "input.text", expected: "a question", got: '""' },
    });
  });

  it("hides internals and stack traces in production, and logs them", () => {
    const logged: unknown[] = [];
    const [formatted, raw] = wrap(new Error("connection string postgres://secret@db"));
    const out = formatError(formatted, raw, { production: true, log: (e) => logged.push(e) });
    expect(out).toEqual({ message: "internal error", locations: undefined, path: ["x"], extensions: { code: ErrorCode.INTERNAL } });
    expect(JSON.stringify(out)).not.toMatch(/secret/);
    expect(logged).toHaveLength(1);
  });

  it("shows an internal message in development, still without the stack trace", () => {
    const [formatted, raw] = wrap(new Error("boom"));
    const out = formatError(formatted, raw, { production: false });
    expect(out.message).toBe("boom");
    expect(out.extensions).toEqual({ code: ErrorCode.INTERNAL });
  });

  it("passes GraphQL's own client errors through", () => {
    const gql = new GraphQLError("Cannot query field", { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } });
    expect(formatError(gql.toJSON(), gql, { production: true }).extensions).toEqual({ code: "GRAPHQL_VALIDATION_FAILED" });
  });
});
