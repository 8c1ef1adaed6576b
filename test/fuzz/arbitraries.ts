/**
 * fast-check arbitraries shared by the fuzz tests: what clients send, right, wrong and hostile.
 * Real ids come from the running test (`realIds`), so some cases reach past "not found".
 */
import fc from "fast-check";
import { toGlobalId } from "../../src/api/ids.js";

const NODE_TYPES = ["Conversation", "Turn", "Image", "User", "Nope", ""];
export const junk = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", " ", "\u0000", "%%%", "null", "-1", "1e309", "../../etc/passwd", "'; drop table turns; --", "\u202e\ud800"),
  fc.string({ minLength: 2000, maxLength: 6000 }),
);
/** Ids the test has made (own, another user's): filled in by the test before it runs cases. */
export const realIds: string[] = [];
/** Ids as clients send them: real ones (own, another user's), well-formed unknown ones, and junk. */
export const id = fc.oneof(
  { weight: 3, arbitrary: fc.nat().map((n) => (realIds.length === 0 ? "" : realIds[n % realIds.length]!)) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...NODE_TYPES.slice(0, 4)), fc.uuid()).map(([type, u]) => toGlobalId(type as "Turn", u)) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...NODE_TYPES), fc.string()).map(([type, s]) => Buffer.from(`${type}:${s}`).toString("base64url")) },
  { weight: 2, arbitrary: junk },
);
/** Anything JSON can carry, for any field: the wrong type is the commonest client bug. */
export const anything = fc.jsonValue({ maxDepth: 3 });
export const either = <T>(plausible: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: plausible }, { weight: 1, arbitrary: anything });
export const numberish = fc.oneof(fc.integer(), fc.integer({ min: -3, max: 300 }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -1, 2 ** 31, 2 ** 53, 1e308), junk);
export const params = fc.record(
  {
    steps: numberish,
    diffusionSteps: numberish,
    cfg: numberish,
    temperature: numberish,
    seed: numberish,
    resolution: numberish,
    maxTokens: numberish,
    previewEvery: numberish,
    previewSize: numberish,
    cfgSchedule: either(fc.constantFrom("CONSTANT", "LINEAR", "linear", "")),
    previewMethod: either(fc.constantFrom("NONE", "LINEAR", "DECODED", "x")),
    extra: anything,
  },
  { requiredKeys: [] },
);
export const text = fc.oneof(fc.string({ maxLength: 300 }), fc.constantFrom("a red circle", "What colour is the square?", "make it blue"), junk);
export const sendInput = fc.record(
  {
    conversationId: either(id),
    text: either(text),
    task: either(fc.constantFrom("AUTO", "GENERATE", "EDIT", "UNDERSTAND", "generate")),
    imageIds: either(fc.array(either(id), { maxLength: 6 })),
    params: either(params),
    unknownField: anything,
  },
  { requiredKeys: [] },
);
export const page = fc.option(either(numberish), { nil: undefined });
export const cursor = fc.option(either(fc.oneof(id, fc.nat().map((n) => Buffer.from(String(n)).toString("base64url")), junk)), { nil: undefined });

