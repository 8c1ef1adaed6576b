/**
 * Reading OpenAI request bodies: JSON objects, multipart forms (images/edits), and checked
 * fields. Failures are AppErrors whose field is OpenAI's parameter name, which the edge reports
 * as `param`.
 */
import type { IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import busboy from "busboy";
import { AppError, ErrorCode } from "../../errors.js";
import type { Manifest } from "../../engine/manifest.js";
import { readBody } from "../http.js";
import { MAX_SEED } from "../../turns/validate.js";

export type Body = Record<string, unknown>;

/** A JSON object body of at most `max` bytes. */
export async function readJsonBody(req: IncomingMessage, max: number): Promise<Body> {
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (!type.includes("json")) throw AppError.badInput("body", "a JSON body (content-type: application/json)", type || "no content-type");
  const text = (await readBody(req, max)).toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw AppError.badInput("body", "a JSON object", "unparseable JSON");
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw AppError.badInput("body", "a JSON object", body);
  return body as Body;
}

export interface FormFile {
  field: string;
  bytes: Uint8Array;
}

/** Form fields that are numbers or booleans in OpenAI's JSON; forms carry them as text. */
const FORM_NUMBERS = new Set(["n", "partial_images", "seed", "output_compression"]);
const FORM_BOOLEANS = new Set(["stream"]);

/**
 * A multipart/form-data body: its text fields (numbers and booleans as OpenAI's SDKs write them,
 * "2", "true") and its files. Files over `maxFileBytes` are PAYLOAD_TOO_LARGE.
 */
export async function readForm(req: IncomingMessage, maxFileBytes: number): Promise<{ fields: Body; files: FormFile[] }> {
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (!type.startsWith("multipart/form-data")) throw AppError.badInput("body", "a multipart/form-data body", type || "no content-type");
  // Framing and text fields add a little; each file is held to maxFileBytes below.
  const body = await readBody(req, maxFileBytes + 64 * 1024);
  return new Promise((resolve, reject) => {
    const fields: Body = {};
    const files: FormFile[] = [];
    const parser = busboy({ headers: req.headers, limits: { files: 4, fields: 64, fileSize: maxFileBytes } });
    parser.on("field", (name, value) => {
      if (FORM_NUMBERS.has(name) && /^-?\d+$/.test(value)) fields[name] = Number(value);
      else if (FORM_BOOLEANS.has(name) && (value === "true" || value === "false")) fields[name] = value === "true";
      else fields[name] = value;
    });
    parser.on("file", (name, stream) => {
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("limit", () => reject(new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `${name}: expected at most ${maxFileBytes} bytes`, { field: name, expected: `at most ${maxFileBytes} bytes`, got: "more" })));
      stream.on("end", () => {
        const all = Buffer.concat(parts);
        files.push({ field: name, bytes: new Uint8Array(all.buffer, all.byteOffset, all.byteLength) });
      });
    });
    parser.on("error", (e) => reject(AppError.badInput("body", "a multipart/form-data body", `unreadable multipart (${(e as Error).message})`)));
    parser.on("close", () => resolve({ fields, files }));
    Readable.from([body]).pipe(parser);
  });
}

export function optionalInt(body: Body, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw AppError.badInput(field, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

export function optionalBool(body: Body, field: string): boolean {
  const value = body[field];
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw AppError.badInput(field, "true or false", value);
  return value;
}

export function optionalChoice<T extends string>(body: Body, field: string, allowed: readonly T[]): T | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) throw AppError.badInput(field, `one of ${allowed.join(", ")}`, value);
  return value as T;
}

export function requiredText(body: Body, field: string, maxChars: number): string {
  const value = body[field];
  if (typeof value !== "string" || value.trim().length === 0) throw AppError.badInput(field, "a non-empty string", value);
  if (value.length > maxChars) throw AppError.limit(field, `at most ${maxChars} characters`, `${value.length} characters`);
  return value;
}

/** The `seed` extension: the first image's seed (later ones take the next seeds). */
export function optionalSeed(body: Body): number | undefined {
  return optionalInt(body, "seed", 0, MAX_SEED);
}

/**
 * The `model` field: absent, or the loaded model's name. Another name is NOT_FOUND rather than
 * silently served by a different model.
 */
export function checkModel(body: Body, manifest: Manifest): void {
  const model = body.model;
  if (model === undefined || model === null || model === manifest.name) return;
  throw new AppError(ErrorCode.NOT_FOUND, `The model ${JSON.stringify(model)} does not exist; this server serves ${JSON.stringify(manifest.name)}`, {
    field: "model",
    expected: manifest.name,
    got: String(model),
  });
}

/** The model's output sizes as OpenAI writes them ("64x64"); only square ones exist. */
export function sizesOf(manifest: Manifest): string[] {
  return manifest.resolutions.map((r) => `${r.size}x${r.size}`);
}

/** `size`: absent or "auto" is the model's default resolution; anything else must be one of its sizes. */
export function parseSize(body: Body, manifest: Manifest): number {
  const value = body.size;
  if (value === undefined || value === null || value === "auto") return manifest.defaultResolution;
  const allowed = sizesOf(manifest);
  const at = typeof value === "string" ? allowed.indexOf(value) : -1;
  if (at < 0) throw AppError.badInput("size", `one of ${allowed.join(", ")} (the sizes ${manifest.name} makes) or auto`, value);
  return manifest.resolutions[at]!.size;
}

/** The scheme and host the client used, for absolute image URLs (a proxy's forwarded ones first). */
export function requestOrigin(req: IncomingMessage): string {
  const first = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h)?.split(",")[0]?.trim() || undefined;
  const proto = first(req.headers["x-forwarded-proto"]) ?? ("encrypted" in req.socket && req.socket.encrypted ? "https" : "http");
  const host = first(req.headers["x-forwarded-host"]) ?? req.headers.host ?? "localhost";
  return `${proto}://${host}`;
}
