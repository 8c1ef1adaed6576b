/**
 * GraphQL-over-HTTP conformance: the graphql-http audit suite against the running server.
 * Every MUST audit is a test; SHOULD audits are collected and compared with the list README.md
 * documents, so a newly missed SHOULD fails here until it is fixed or explained.
 */
import { serverAudits } from "graphql-http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** fetch with the API key added: the audits know nothing of authentication. */
const authedFetch = (input: string | URL, init: RequestInit = {}): Promise<Response> => {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${t.adminKey}`);
  return fetch(input, { ...init, headers });
};

const audits = serverAudits({ url: () => `${t.url}/graphql`, fetchFn: authedFetch });

/** SHOULD audits this server misses on purpose; README.md explains each. */
const KNOWN_SHOULD_MISSES = new Set<string>([
  "572B", // 200 on document parse failure with application/json: Apollo answers 400
  "FDE2", // 200 on document validation failure with application/json: Apollo answers 400
  "7B9B", // 200 on variable coercion failure with application/json: Apollo answers 400
]);

describe("graphql-http audits", () => {
  for (const audit of audits.filter((a) => a.name.startsWith("MUST"))) {
    it(audit.name, async () => {
      const result = await audit.fn();
      expect(result.status === "ok" ? "ok" : `${result.reason} ${JSON.stringify(result.response ? { status: result.response.status } : {})}`).toBe("ok");
    });
  }

  it("SHOULD audits: only the documented misses", async () => {
    const missed: string[] = [];
    for (const audit of audits.filter((a) => a.name.startsWith("SHOULD"))) {
      const result = await audit.fn();
      if (result.status !== "ok") missed.push(`${audit.id} ${audit.name}: ${result.reason}`);
    }
    expect(missed.filter((m) => !KNOWN_SHOULD_MISSES.has(m.split(" ")[0]!))).toEqual([]);
  });
});
