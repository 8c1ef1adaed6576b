/**
 * The web client's GraphQL documents against the schema, with or without Chromium: every
 * operation in src/web/queries.ts parses and validates (fields, arguments, variable types), so
 * a schema change that would break the client fails here even where the browser tests are skipped.
 */
import { parse, validate, type GraphQLSchema } from "graphql";
import { beforeAll, describe, expect, it } from "vitest";
import { createSchema } from "../../src/api/schema.js";
import * as queries from "../../src/web/queries.js";

const operations = (Object.entries(queries) as Array<[string, unknown]>).filter((e): e is [string, string] => typeof e[1] === "string" && /^\s*(query|mutation|subscription)\b/.test(e[1]));

let schema: GraphQLSchema;
beforeAll(async () => {
  schema = await createSchema();
});

const problems = (document: string): string[] => validate(schema, parse(document)).map((e) => e.message);

describe("the web client's operations", () => {
  it("are all found (every exported operation, by name)", () => {
    expect(operations.map(([name]) => name).sort()).toEqual([
      "CANCEL_TURN", "CONVERSATION", "CONVERSATIONS", "CONVERSATION_UPDATED", "CREATE_CONVERSATION", "DELETE_CONVERSATION", "RENAME_CONVERSATION", "SEND_MESSAGE", "TURN_UPDATED", "VIEWER",
    ]);
  });

  it.each(operations)("%s is valid against the schema", (_name, document) => {
    expect(problems(document)).toEqual([]);
  });

  it("would be caught asking for a field the schema lacks", () => {
    expect(problems(queries.VIEWER.replace("isAdmin", "isAdmin password"))).toEqual([`Cannot query field "password" on type "User".`]);
  });
});
