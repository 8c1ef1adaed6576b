/**
 * Property-based fuzzing, in process, of the checks every message, id and cursor passes before
 * anything is stored (issue 14, item 1): ids and cursors of any shape, message text and titles,
 * and sampling parameters against the model's own table. Each case returns a value or throws an
 * AppError whose field is the one given, with what was expected and what came; nothing else.
 * These are the bulk of the run's cases; graphql.test.ts sends the same shapes over HTTP.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyOf, parseConversationCursor, parseGlobalId, parseTurnCursor, type NodeTypeName } from "../../src/api/ids.js";
import { loadConfig } from "../../src/config.js";
import { loadManifest } from "../../src/engine/manifest.js";
import { AppError, ErrorCode } from "../../src/errors.js";
import { TurnKind } from "../../src/store/index.js";
import { resolveTurnParams } from "../../src/turns/params.js";
import { validateText, validateTitle } from "../../src/turns/validate.js";
import { id, junk } from "./arbitraries.js";

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const replay = { seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED), path: process.env.FC_PATH };

/** Runs `call`; a throw must be an AppError of `codes` naming `field` (exactly, or under it). */
function outcome(call: () => unknown, field: string, codes: ErrorCode[]): string {
  try {
    call();
    return "ok";
  } catch (error) {
    if (!(error instanceof AppError)) throw new Error(`not an AppError: ${String(error)}`);
    expect(codes).toContain(error.code);
    if (error.code === ErrorCode.NOT_FOUND) return error.code; // a well-formed id of another type
    expect(error.field === field || error.field?.startsWith(`${field}.`), `field ${error.field}, wanted ${field}`).toBe(true);
    expect(error.expected).toBeTruthy();
    expect(error.got).toBeTruthy();
    return error.code;
  }
}

function tally(): { add(k: string): void; seen: Record<string, number> } {
  const seen: Record<string, number> = {};
  return { add: (k) => void (seen[k] = (seen[k] ?? 0) + 1), seen };
}

/** Cursors: made by the server (base64url of turn:N / conv:DATE:UUID), near misses, and junk. */
const cursorLike = fc.oneof(
  fc.integer({ min: -5, max: 2 ** 40 }).map((n) => Buffer.from(`turn:${n}`).toString("base64url")),
  fc.tuple(fc.date({ noInvalidDate: true }), fc.uuid()).map(([d, u]) => Buffer.from(`conv:${d.toISOString()}:${u}`).toString("base64url")),
  fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 40 })).map(([a, b]) => Buffer.from(`conv:${a}:${b}`).toString("base64url")),
  fc.string().map((s) => Buffer.from(s).toString("base64")),
  junk,
  id,
);

describe("fuzzing ids, cursors, text and parameters (fast-check, in process)", () => {
  it("ids of every shape: the key, or BAD_INPUT naming the field, or NOT_FOUND for another type", () => {
    const t = tally();
    fc.assert(
      fc.property(fc.constantFrom<NodeTypeName>("Conversation", "Turn", "Image", "User"), cursorLike, (type, value) => {
        const parsed = parseGlobalId(value);
        if (parsed !== null) expect(["Conversation", "Turn", "Image", "User"]).toContain(parsed.type);
        t.add(outcome(() => keyOf(type, value, "input.conversationId"), "input.conversationId", [ErrorCode.BAD_INPUT, ErrorCode.NOT_FOUND]));
      }),
      { numRuns: runs(2000), ...replay },
    );
    expect(t.seen.ok ?? 0, JSON.stringify(t.seen)).toBeGreaterThan(0);
    expect(t.seen.BAD_INPUT ?? 0).toBeGreaterThan(0);
  });

  it("cursors of every shape: a position or sort key, or BAD_INPUT naming the argument", () => {
    const t = tally();
    fc.assert(
      fc.property(cursorLike, (value) => {
        t.add(`turn:${outcome(() => expect(Number.isSafeInteger(parseTurnCursor(value, "after"))).toBe(true), "after", [ErrorCode.BAD_INPUT])}`);
        t.add(`conv:${outcome(() => expect(Number.isNaN(parseConversationCursor(value, "before").createdAt.getTime())).toBe(false), "before", [ErrorCode.BAD_INPUT])}`);
      }),
      { numRuns: runs(2000), ...replay },
    );
    for (const k of ["turn:ok", "turn:BAD_INPUT", "conv:ok", "conv:BAD_INPUT"]) expect(t.seen[k] ?? 0, JSON.stringify(t.seen)).toBeGreaterThan(0);
  });

  it("message text and titles: kept, or refused naming the field", () => {
    const limits = loadConfig({}).limits;
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: "grapheme", maxLength: 50 }), junk), (text) => {
        outcome(() => validateText(text, limits), "input.text", [ErrorCode.LIMIT_EXCEEDED, ErrorCode.BAD_INPUT]); // BAD_INPUT: NUL
        outcome(() => expect(validateTitle(text, "input.title").length).toBeGreaterThan(0), "input.title", [ErrorCode.BAD_INPUT]);
      }),
      { numRuns: runs(1500), ...replay },
    );
  });

  it("sampling parameters, against the model's table: resolved, or refused naming input.params.<name>", async () => {
    const manifest = await loadManifest(loadConfig({}).modelDir);
    // Mostly in range (so some messages pass every check), sometimes anything a client can send.
    const number = fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 8 }) }, fc.integer(), fc.integer({ min: -2, max: 600 }), fc.double({ noNaN: true }), fc.constantFrom(0, 2 ** 31, -0));
    const params = fc.record(
      {
        steps: number,
        cfg: number,
        temperature: number,
        diffusionSteps: number,
        seed: number,
        resolution: number,
        maxTokens: number,
        previewEvery: number,
        previewSize: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 16, max: 256 }) }, number),
        cfgSchedule: fc.constantFrom("constant", "linear"),
        previewMethod: fc.constantFrom("none", "linear", "vae"),
      },
      { requiredKeys: [] },
    );
    const t = tally();
    fc.assert(
      fc.property(params, fc.constantFrom(TurnKind.GENERATE, TurnKind.EDIT, TurnKind.UNDERSTAND), (p, kind) => {
        t.add(outcome(() => resolveTurnParams(manifest, kind, p as never, 1), "input.params", [ErrorCode.BAD_INPUT, ErrorCode.LIMIT_EXCEEDED]));
      }),
      { numRuns: runs(2000), ...replay },
    );
    expect(t.seen.ok ?? 0, JSON.stringify(t.seen)).toBeGreaterThan(0);
    expect(t.seen.BAD_INPUT ?? 0, JSON.stringify(t.seen)).toBeGreaterThan(0);
  });
});

describe("text PostgreSQL cannot store", () => {
  it("a NUL character in a message or a title is refused naming the field (found by the GraphQL fuzzer on PostgreSQL)", () => {
    const limits = loadConfig({}).limits;
    expect(() => validateText("a red\u0000 circle", limits)).toThrow(/input\.text: expected text without NUL.*NUL at character 5/);
    expect(() => validateTitle("\u0000", "input.title")).toThrow(/input\.title: expected text without NUL/);
    expect(validateText("a red circle", limits)).toBe("a red circle");
  });
});
