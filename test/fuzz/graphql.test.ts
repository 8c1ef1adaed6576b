/**
 * Property-based fuzzing of the GraphQL API over HTTP (issue 14, item 1): every mutation's input,
 * ids and cursors, and whole documents (deep, wide, aliased, fragment cycles, huge variables),
 * sent by an ordinary user to a real server. Each case ends in data or coded errors (oracle.ts);
 * the server keeps answering, and what another user stored reads back byte for byte the same.
 * Case counts: FUZZ_SCALE (default 1) multiplies them; a failure prints fast-check's seed and
 * path (replay with FC_SEED / FC_PATH).
 */
import fc from "fast-check";
import { GraphQLError, parse, validate } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anything, cursor, either, id, junk, numberish, page, realIds, sendInput, text } from "./arbitraries.js";
import { CREATE_CONVERSATION, SEND_MESSAGE, gqlOk, startTestApp, type TestApp } from "../helpers/app.js";
import { connectionFields, enforceOperationLimits } from "../../src/api/limits.js";
import { createSchema } from "../../src/api/schema.js";
import { AppError, ErrorCode } from "../../src/errors.js";
import { checkGraphQL, send, type Outcome, type Tally } from "./oracle.js";

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const replay = { seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED), path: process.env.FC_PATH };

let t: TestApp;
let fuzzKey: string;
let witnessKey: string;
const WITNESS = `{ viewer { name } conversations(first: 50) { nodes { id title createdAt updatedAt turns(first: 50) { totalCount nodes { id position role status text seed params inputImages { id } } } } } }`;

function post(key: string, body: unknown): Promise<Outcome> {
  return send(`${t.url}/graphql`, "POST", { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${key}` }, JSON.stringify(body));
}

beforeAll(async () => {
  // Quotas off: the fuzzer's valid messages should succeed, not meet its rate limit.
  t = await startTestApp({ USER_TURNS_PER_MINUTE: "0", USER_QUEUED_TURNS: "0" });
  fuzzKey = await t.newUser("fuzzer");
  witnessKey = await t.newUser("witness");
  const witnessConv = (await gqlOk(t.url, witnessKey, CREATE_CONVERSATION, { title: "must not change" })).createConversation.id;
  const sent = await gqlOk(t.url, witnessKey, SEND_MESSAGE, { input: { conversationId: witnessConv, text: "a red circle", task: "GENERATE", params: { steps: 4, seed: 1 } } });
  realIds.push(witnessConv, sent.sendMessage.userTurn.id, sent.sendMessage.assistantTurn.id);
  for (let i = 0; i < 3; i++) realIds.push((await gqlOk(t.url, fuzzKey, CREATE_CONVERSATION, { title: `own ${i}` })).createConversation.id);
});
afterAll(async () => {
  await t?.close();
});

/** One operation a client may send, with variables drawn for it. */
const operation = fc.oneof(
  sendInput.map((input) => ({ query: `mutation($input: SendMessageInput!) { sendMessage(input: $input) { userTurn { id } assistantTurn { id status } } }`, variables: { input } })),
  either(fc.record({ title: either(text) }, { requiredKeys: [] })).map((input) => ({ query: `mutation($input: CreateConversationInput) { createConversation(input: $input) { id title } }`, variables: { input } })),
  fc.record({ id: either(id), title: either(text) }).map((v) => ({ query: `mutation($id: ID!, $title: String!) { renameConversation(id: $id, title: $title) { id title } }`, variables: v })),
  fc.record({ id: either(id) }).map((v) => ({ query: `mutation($id: ID!) { deleteConversation(id: $id) }`, variables: v })),
  fc.record({ id: either(id) }).map((v) => ({ query: `mutation($id: ID!) { cancelTurn(id: $id) { id status } }`, variables: v })),
  fc.record({ key: either(fc.oneof(junk, fc.string().map((s) => `upk_${s}`))) }).map((v) => ({ query: `mutation($key: String!) { revokeApiKey(key: $key) }`, variables: v })),
  fc.record({ name: either(text) }).map((v) => ({ query: `mutation($name: String!) { createUser(name: $name) { user { id } } }`, variables: v })),
  // Ids and cursors.
  fc.record({ id: either(id) }).map((v) => ({ query: `query($id: ID!) { node(id: $id) { id __typename } }`, variables: v })),
  fc.record({ id: either(id), first: page, after: cursor, last: page, before: cursor }).map((v) => ({
    query: `query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) { conversation(id: $id) { id turns(first: $first, after: $after, last: $last, before: $before) { totalCount pageInfo { hasNextPage endCursor } nodes { id } } } }`,
    variables: v,
  })),
  fc.record({ first: page, after: cursor }).map((v) => ({ query: `query($first: Int, $after: String) { conversations(first: $first, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } }`, variables: v })),
);

const FIELDS = ["id", "name", "isAdmin", "__typename"];
/** Documents that stress the parser, validation and the limits rather than the resolvers. */
const documents = fc.oneof(
  // Deep: conversations > nodes > turns > nodes > ... as far as the schema nests, then nonsense.
  fc.nat({ max: 60 }).map((depth) => `{ ${"conversations { nodes { turns { nodes { conversation { ".repeat(Math.ceil(depth / 5))}id${" } } } } }".repeat(Math.ceil(depth / 5))} }`),
  fc.nat({ max: 100 }).map((n) => `{ ${"a: viewer { a: viewer { ".repeat(n)} id ${"} } ".repeat(n)} }`),
  // Wide and aliased.
  fc.integer({ min: 1, max: 1000 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { id }`).join(" ")} }`),
  fc.integer({ min: 1, max: 60 }).map((n) => `{ ${Array.from({ length: n }, (_, i) => `c${i}: conversations(first: 100) { nodes { turns(first: 100) { nodes { id } } } }`).join(" ")} }`),
  // Fragment cycles and spreads of unknown fragments.
  fc.integer({ min: 1, max: 20 }).map((n) => `query { viewer { ...F0 } } ${Array.from({ length: n }, (_, i) => `fragment F${i} on User { id ...F${(i + 1) % n} }`).join(" ")}`),
  fc.constantFrom(`{ viewer { ...Missing } }`, `fragment A on User { ...A } { viewer { ...A } }`, `{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }`),
  // Random fields, directives and syntax.
  fc.array(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), { maxLength: 30 }).map((fields) => `{ viewer { ${fields.join(" ")} } }`),
  fc.string({ maxLength: 200 }),
  fc.constantFrom(`{ viewer @skip(if: $x) { id } }`, `subscription { turnUpdated(id: "x") { kind } }`, `mutation { __typename }`, `{`, `query q { viewer { id } } query q { viewer { id } }`),
);
/** Variables of every size: a megabyte string, a long array, deep nesting. */
const hugeVariables = fc.oneof(
  fc.integer({ min: 1, max: 1_500_000 }).map((n) => ({ input: { conversationId: "x", text: "a".repeat(n) } })),
  fc.integer({ min: 1, max: 100_000 }).map((n) => ({ input: { conversationId: "x", text: "a", imageIds: Array.from({ length: n }, (_, i) => `id${i}`) } })),
  fc.integer({ min: 1, max: 1_000 }).map((n) => ({ input: JSON.parse(`${'{"a":'.repeat(n)}1${"}".repeat(n)}`) })),
);

// ---- properties --------------------------------------------------------------------------

describe("fuzzing the GraphQL API (fast-check)", () => {
  const tally: Tally = new Map();
  let before: unknown;

  beforeAll(async () => {
    before = (await post(witnessKey, { query: WITNESS })).body;
  });

  it("every mutation input, id and cursor ends in data or a coded error naming the field", async () => {
    await fc.assert(
      fc.asyncProperty(operation, async (op) => {
        checkGraphQL(await post(fuzzKey, op), op, tally);
      }),
      { numRuns: runs(700), ...replay },
    );
  });

  it("every document and variables payload ends in data or a coded error", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(documents.map((query) => ({ query })), fc.record({ query: fc.constant(SEND_MESSAGE), variables: hugeVariables }), fc.record({ query: documents, variables: anything })), async (body) => {
        checkGraphQL(await post(fuzzKey, body), body, tally);
      }),
      { numRuns: runs(300), ...replay },
    );
  });

  it("every document passes or is refused with a located or coded error by the gate every transport uses (in process)", async () => {
    // What ws.ts does before executing, and Apollo's plugins do over HTTP: parse, validate, limits.
    const schema = await createSchema();
    const connections = connectionFields(schema);
    const gate = (query: string, variables: unknown): string => {
      let document;
      try {
        document = parse(query);
      } catch (error) {
        if (!(error instanceof GraphQLError) || !(error.locations?.length ?? 0)) throw error;
        return "GRAPHQL_PARSE_FAILED";
      }
      const invalid = validate(schema, document);
      if (invalid.length > 0) {
        for (const e of invalid) if (!(e instanceof GraphQLError) || e.message === "") throw e;
        return "GRAPHQL_VALIDATION_FAILED";
      }
      try {
        enforceOperationLimits(document, undefined, variables as Record<string, unknown>, t.config.limits, connections);
      } catch (error) {
        if (!(error instanceof AppError) || error.code !== ErrorCode.LIMIT_EXCEEDED || error.field !== "query" || !error.expected || !error.got) throw error;
        return error.code;
      }
      return "ok";
    };
    const seen: Tally = new Map();
    fc.assert(
      fc.property(documents, fc.option(anything, { nil: undefined }), (query, variables) => {
        const outcome = gate(query, variables);
        seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
      }),
      { numRuns: runs(3000), ...replay },
    );
    for (const outcome of ["ok", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "LIMIT_EXCEEDED"]) expect(seen.get(outcome) ?? 0, JSON.stringify(Object.fromEntries(seen))).toBeGreaterThan(0);
  });

  it("the server is still up, and nothing another user stored changed", async () => {
    expect((await send(`${t.url}/healthz`, "GET", {})).status).toBe(200);
    expect((await post(witnessKey, { query: WITNESS })).body).toEqual(before);
    expect(await t.app.store.users.byApiKey(witnessKey)).not.toBeNull();
    // The fuzzing reached well past the first check: successes and several kinds of refusal.
    const seen = Object.fromEntries(tally);
    expect(seen.ok ?? 0, JSON.stringify(seen)).toBeGreaterThan(runs(700) / 20);
    for (const code of ["BAD_INPUT", "NOT_FOUND", "BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED", "FORBIDDEN"]) expect(seen[code] ?? 0, `${code} in ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    console.log(`graphql fuzz outcomes: ${JSON.stringify(seen)}`);
  });
});
