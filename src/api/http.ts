/**
 * HTTP helpers (JSON answers, errors, bounded bodies, authentication) and the image routes'
 * handlers, upload and download; routes.ts dispatches to them. Errors are JSON
 * `{ error: { code, message, field?, expected?, got? } }` with the status of their ErrorCode.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import busboy from "busboy";
import { AppError, ErrorCode, HTTP_STATUS } from "../errors.js";
import { extToMime, mimeToExt, normalizeUpload, type ImageMime } from "../images/index.js";
import type { ImageMeta, UserRow } from "../store/index.js";
import { authenticate } from "./auth.js";
import { isSha256, parseGlobalId, toGlobalId } from "./ids.js";
import type { Services } from "../turns/service.js";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res: ServerResponse, error: unknown, production: boolean): ErrorCode {
  const app = error instanceof AppError ? error : undefined;
  const code = app?.code ?? ErrorCode.INTERNAL;
  const message = app === undefined ? (production ? "internal error" : String((error as Error)?.message ?? error)) : app.message;
  const body: Record<string, unknown> = { code, message };
  if (app?.field !== undefined) body.field = app.field;
  if (app?.expected !== undefined) body.expected = app.expected;
  if (app?.got !== undefined) body.got = app.got;
  if (app?.retryAfterMs !== undefined) body.retryAfterMs = app.retryAfterMs;
  if (!res.headersSent) {
    const headers: Record<string, string> = { ...retryHeaders(app) };
    // A body we refused to read may still be arriving: close the connection after answering.
    if (code === ErrorCode.PAYLOAD_TOO_LARGE) headers.connection = "close";
    sendJson(res, HTTP_STATUS[code], { error: body }, headers);
  } else {
    res.destroy();
  }
  return code;
}

/**
 * `Retry-After` (whole seconds, rounded up, as HTTP wants) and `retry-after-ms` (exact; OpenAI's
 * SDKs read it first) for an error that says when to come back; nothing otherwise.
 */
export function retryHeaders(error: AppError | undefined): Record<string, string> {
  const ms = error?.retryAfterMs;
  if (typeof ms !== "number") return {};
  return { "retry-after": String(Math.max(1, Math.ceil(ms / 1000))), "retry-after-ms": String(Math.max(0, Math.round(ms))) };
}

/** Reads a request body, failing with PAYLOAD_TOO_LARGE as soon as it passes `max` bytes. */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `body: expected at most ${max} bytes, got ${declared}`, { field: "body", expected: `at most ${max} bytes`, got: `${declared} bytes` });
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) {
      throw new AppError(ErrorCode.PAYLOAD_TOO_LARGE, `body: expected at most ${max} bytes, got more`, { field: "body", expected: `at most ${max} bytes`, got: `more than ${max} bytes` });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** The first file of a multipart/form-data body. */
async function firstMultipartFile(req: IncomingMessage, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let found = false;
    const parser = busboy({ headers: req.headers, limits: { files: 1, fileSize: body.length } });
    parser.on("file", (_name, stream) => {
      found = true;
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("end", () => resolve(Buffer.concat(parts)));
    });
    parser.on("error", (e) => reject(AppError.badInput("body", "a multipart/form-data body with one file", `unreadable multipart (${(e as Error).message})`)));
    parser.on("close", () => {
      if (!found) reject(AppError.badInput("body", "a multipart/form-data body with one file", "no file part"));
    });
    Readable.from([body]).pipe(parser);
  });
}

/** Validates and normalises uploaded bytes and stores them as the user's upload (POST /images and the OpenAI routes). */
export async function storeUpload(services: Services, user: UserRow, bytes: Uint8Array): Promise<ImageMeta> {
  const image = await normalizeUpload(bytes, services.config.limits);
  return services.quotas.admitUpload(user, image.id, image.bytes.byteLength, async () => {
    const meta = await services.store.images.put({ id: image.id, bytes: image.bytes, mime: image.mime, width: image.width, height: image.height, lineage: { origin: "upload" } });
    await services.store.images.grantUpload(user.id, meta.id);
    return meta;
  });
}

/** POST /images: raw image bytes or multipart/form-data; answers {id, sha256, url, width, height, mime}. */
export async function handleUpload(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow): Promise<void> {
  const { limits } = services.config;
  // Multipart framing adds a little; the image itself is held to maxUploadBytes by normalizeUpload.
  const body = await readBody(req, limits.maxUploadBytes + 64 * 1024);
  const isMultipart = (req.headers["content-type"] ?? "").toLowerCase().startsWith("multipart/form-data");
  const raw = isMultipart ? await firstMultipartFile(req, body) : body;
  const meta = await storeUpload(services, user, new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  sendJson(res, 201, {
    id: toGlobalId("Image", meta.id),
    sha256: meta.id,
    url: `/images/${meta.id}.${mimeToExt(meta.mime as ImageMime)}`,
    width: meta.width,
    height: meta.height,
    mime: meta.mime,
  });
}

/** GET /images/:name where name is `<sha256>`, `<sha256>.<ext>` or an Image global id. */
export async function handleDownload(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow, name: string): Promise<void> {
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : undefined;
  const parsed = isSha256(stem) ? { type: "Image", key: stem } : parseGlobalId(stem);
  if (parsed === null || parsed.type !== "Image") throw AppError.badInput("id", "an image sha256 or Image id", name);
  const found = await services.store.images.bytes(user.id, parsed.key);
  if (found === null || (ext !== undefined && extToMime(ext) !== found.meta.mime)) throw AppError.notFound("image");
  const etag = `"${found.meta.id}"`;
  const headers = {
    etag,
    // Content-addressed: the bytes behind a URL never change. "private": it needs a key to see.
    "cache-control": "private, max-age=31536000, immutable",
    vary: "Authorization",
  };
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-type": found.meta.mime, "content-length": found.bytes.byteLength });
  res.end(found.bytes);
}

/** Authenticates an HTTP request by its Authorization header. */
export function authenticateRequest(req: IncomingMessage, services: Services): Promise<UserRow> {
  return authenticate(services.store, req.headers.authorization);
}
