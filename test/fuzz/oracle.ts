/**
 * What every fuzz case must end in (issue 14, item 1): success, or an error with a code that
 * says what was wrong and, for bad input, names the field, what was expected and what came.
 * Never INTERNAL, never a 500, never a body that is not JSON.
 */
import { request } from "node:http";
import { ErrorCode } from "../../src/errors.js";

/** GraphQL's and Apollo's own codes for documents and variables they refuse before our code runs. */
const GRAPHQL_CODES = new Set(["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT", "BAD_REQUEST", "OPERATION_RESOLUTION_FAILURE"]);
const OUR_CODES = new Set<string>(Object.values(ErrorCode).filter((c) => c !== ErrorCode.INTERNAL));
/** Codes that say which input was at fault: they must carry field, expected and got. */
const FIELD_CODES = new Set<string>([ErrorCode.BAD_INPUT, ErrorCode.LIMIT_EXCEEDED, ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA]);

export interface Outcome {
  status: number;
  body: unknown;
}

/** Tallies of what the cases ended in, to show the fuzzing reached past the first check. */
export type Tally = Map<string, number>;

function fail(why: string, outcome: Outcome, input: unknown): never {
  const shown = JSON.stringify(input)?.slice(0, 600);
  throw new Error(`${why}\n  status ${outcome.status}, body ${JSON.stringify(outcome.body)?.slice(0, 600)}\n  input ${shown}`);
}

/** Checks one coded error object ({code, message, field?, ...}: extensions or a route's `error`). */
function checkCoded(code: unknown, message: unknown, fields: Record<string, unknown>, outcome: Outcome, input: unknown): string {
  if (typeof code !== "string" || !(OUR_CODES.has(code) || GRAPHQL_CODES.has(code))) fail(`an error without a known code (${String(code)})`, outcome, input);
  if (typeof message !== "string" || message.length === 0) fail("an error without a message", outcome, input);
  if (FIELD_CODES.has(code)) {
    for (const k of ["field", "expected", "got"]) {
      if (typeof fields[k] !== "string" || (fields[k] as string).length === 0) fail(`${code} without ${k}`, outcome, input);
    }
  }
  // GraphQL's coercion errors name the variable and the path inside it in their message.
  if (code === "BAD_USER_INPUT" && !/Variable "\$\w+"|Argument "?\w+"?/.test(message)) fail("BAD_USER_INPUT that names no variable", outcome, input);
  return code;
}

/** A GraphQL-over-HTTP response: data, or errors each with a code (see above). Returns the first code or "ok". */
export function checkGraphQL(outcome: Outcome, input: unknown, tally?: Tally): string {
  const { status, body } = outcome;
  if (status >= 500) fail(`HTTP ${status}`, outcome, input);
  if (typeof body !== "object" || body === null) fail("a body that is not a JSON object", outcome, input);
  // A body refused before GraphQL reads it (over MAX_UPLOAD_BYTES: 413) answers in the routes'
  // shape, `{ error: { code, field, ... } }`, like POST /images.
  if (status >= 400 && "error" in body) return checkRoute(outcome, input, tally);
  const { data, errors } = body as { data?: unknown; errors?: Array<{ message?: unknown; extensions?: Record<string, unknown> }> };
  let first = "ok";
  if (errors === undefined || errors.length === 0) {
    if (data === undefined || data === null) fail("neither data nor errors", outcome, input);
  } else {
    for (const [i, e] of errors.entries()) {
      const code = checkCoded(e.extensions?.code, e.message, e.extensions ?? {}, outcome, input);
      if (i === 0) first = code;
    }
  }
  tally?.set(first, (tally.get(first) ?? 0) + 1);
  return first;
}

/** A plain route's response (POST /images): 2xx, or `{ error: { code, message, field, ... } }`. */
export function checkRoute(outcome: Outcome, input: unknown, tally?: Tally): string {
  const { status, body } = outcome;
  if (status >= 500) fail(`HTTP ${status}`, outcome, input);
  let result = "ok";
  if (status >= 400) {
    const error = (body as { error?: Record<string, unknown> } | null)?.error;
    if (error === undefined) fail("an error response without { error }", outcome, input);
    result = checkCoded(error.code, error.message, error, outcome, input);
  }
  tally?.set(result, (tally.get(result) ?? 0) + 1);
  return result;
}

/**
 * One request on a connection of its own (no keep-alive): a refused body answers 413 and closes
 * its connection (api/http.ts), and a pooled client may already have sent its next request on
 * that socket; the fuzzers check the server, not that race. The body comes back parsed when JSON.
 */
export function send(url: string, method: string, headers: Record<string, string>, body?: Uint8Array | string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* the oracle reports a body that is not JSON */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on("error", reject);
    });
    // The server may answer (413) and close before the whole body is sent: the answer counts.
    req.on("error", reject);
    req.end(body);
  });
}
