/**
 * Property-based fuzzing of uploads (issue 14, item 1): random and truncated bytes, damaged
 * images, huge declared dimensions, 16-bit and palette PNGs, EXIF orientation, animated GIF and
 * WebP, and polyglot files (an image with a ZIP, HTML or another image after it). Each upload is
 * stored as a normalised PNG, JPEG or WebP within the limits, or refused with a code naming the
 * field ("body" or "image"), what was expected and what came. Most cases run normalizeUpload in
 * process; a share goes through POST /images to a real server, which must keep answering.
 */
import fc from "fast-check";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/config.js";
import { AppError, ErrorCode } from "../../src/errors.js";
import { normalizeUpload } from "../../src/images/index.js";
import { startTestApp, type TestApp } from "../helpers/app.js";
import { bombPng, noise, sharpRaw } from "../images/fixtures.js";
import { checkRoute, send, type Tally } from "./oracle.js";

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
function declaredSide(): fc.Arbitrary<number> {
  return fc.oneof(fc.integer({ min: 4097, max: 65_535 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }));
}

const replay = { seed: process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED), path: process.env.FC_PATH };
const limits = { ...DEFAULT_LIMITS, maxUploadBytes: 200_000, maxImagePixels: 1_000_000 };

/** Real images of every kind the issue names, made once; the arbitraries damage and combine them. */
let samples: Record<string, Uint8Array> = {};
async function makeSamples(): Promise<Record<string, Uint8Array>> {
  const img = () => sharpRaw(noise(24, 16), 24, 16);
  const frames = [0, 1, 2].map((i) => sharpRaw(noise(12, 12).map((v) => (v + i * 40) % 256), 12, 12));
  const frameBuffers = await Promise.all(frames.map((f) => f.png().toBuffer()));
  const out: Record<string, Buffer> = {
    png: await img().png().toBuffer(),
    jpeg: await img().jpeg().toBuffer(),
    webp: await img().webp().toBuffer(),
    webpLossless: await img().webp({ lossless: true }).toBuffer(),
    png16: await img().toColourspace("rgb16").png().toBuffer(),
    palette: await img().png({ palette: true, colours: 16 }).toBuffer(),
    grey: await img().greyscale().png().toBuffer(),
    rgba: await img().ensureAlpha(0.5).png().toBuffer(),
    exif6: await img().jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    exif8: await img().webp().withMetadata({ orientation: 8 }).toBuffer(),
    animatedGif: await sharp(frameBuffers, { join: { animated: true } }).gif().toBuffer(),
    animatedWebp: await sharp(frameBuffers, { join: { animated: true } }).webp().toBuffer(),
    gif: await img().gif().toBuffer(),
  };
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, new Uint8Array(v)]));
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const text = (s: string) => new Uint8Array(Buffer.from(s));
const ZIP = concat(text("PK\u0003\u0004"), new Uint8Array(26), text("evil.js"));

/** Uploads: whole samples, cut, flipped, extended, glued together, claimed huge, or just noise. */
const upload = fc.oneof(
  fc.nat().map((n) => ({ how: "sample", bytes: () => Object.values(samples)[n % Object.values(samples).length]! })),
  fc.tuple(fc.nat(), fc.double({ min: 0, max: 1, noNaN: true })).map(([n, f]) => ({ how: "truncated", bytes: () => { const s = Object.values(samples)[n % Object.values(samples).length]!; return s.slice(0, Math.floor(s.length * f)); } })),
  fc.tuple(fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })).map(([n, flips]) => ({ how: "flipped", bytes: () => { const s = Object.values(samples)[n % Object.values(samples).length]!.slice(); for (const [at, v] of flips) s[at % s.length] = v; return s; } })),
  fc.tuple(fc.nat(), fc.constantFrom(ZIP, text("<html><script>alert(1)</script></html>"), text("%PDF-1.4\n"), new Uint8Array(0)), fc.nat()).map(([n, tail, m]) => ({ how: "polyglot", bytes: () => { const v = Object.values(samples); return concat(v[n % v.length]!, tail, m % 3 === 0 ? v[m % v.length]! : new Uint8Array(0)); } })),
  fc.tuple(fc.constantFrom(text("GIF89a"), text("\u00ff\u00d8\u00ff"), text("RIFF\u0000\u0000\u0000\u0000WEBPVP8 "), new Uint8Array([0x89, 0x50, 0x4e, 0x47, 13, 10, 26, 10])), fc.uint8Array({ maxLength: 2000 })).map(([head, rest]) => ({ how: "header+noise", bytes: () => concat(head, rest) })),
  // Half the declared sizes are plausible bombs (each side 4,097-65,535: a valid header that must be
  // refused by its size), so every run meets LIMIT_EXCEEDED; the other half roam the whole range.
  fc.tuple(declaredSide(), declaredSide()).map(([w, h]) => ({ how: "declared", bytes: () => bombPng(w, h) })),
  fc.uint8Array({ maxLength: 3000 }).map((b) => ({ how: "random", bytes: () => b })),
  fc.integer({ min: 200_001, max: 400_000 }).map((n) => ({ how: "oversize", bytes: () => new Uint8Array(n) })),
);

async function normalizeOutcome(bytes: Uint8Array): Promise<string> {
  try {
    const image = await normalizeUpload(bytes, limits);
    expect(["image/png", "image/jpeg", "image/webp"]).toContain(image.mime);
    expect(image.width * image.height).toBeGreaterThan(0);
    expect(image.width * image.height).toBeLessThanOrEqual(limits.maxImagePixels);
    expect(image.bytes.byteLength).toBeGreaterThan(0);
    return "ok";
  } catch (error) {
    if (!(error instanceof AppError)) throw new Error(`not an AppError: ${String((error as Error)?.stack ?? error)}`);
    expect([ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.UNSUPPORTED_MEDIA, ErrorCode.LIMIT_EXCEEDED]).toContain(error.code);
    expect(["body", "image"]).toContain(error.field);
    expect(error.expected).toBeTruthy();
    expect(error.got).toBeTruthy();
    return error.code;
  }
}

let t: TestApp;
beforeAll(async () => {
  samples = await makeSamples();
  t = await startTestApp({ MAX_UPLOAD_BYTES: String(limits.maxUploadBytes), MAX_IMAGE_PIXELS: String(limits.maxImagePixels) });
});
afterAll(async () => {
  await t?.close();
});

describe("fuzzing uploads (fast-check)", () => {
  it("in process: every upload is normalised within the limits or refused naming body or image", async () => {
    const seen: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(upload, async (u) => {
        const key = `${u.how}:${await normalizeOutcome(u.bytes())}`;
        seen[key] = (seen[key] ?? 0) + 1;
      }),
      { numRuns: runs(1500), ...replay },
    );
    // Every kind of damage met a refusal, and whole samples (animated ones excepted) were kept.
    for (const k of ["sample:ok", "sample:UNSUPPORTED_MEDIA", "truncated:UNSUPPORTED_MEDIA", "declared:LIMIT_EXCEEDED", "random:UNSUPPORTED_MEDIA", "oversize:PAYLOAD_TOO_LARGE"]) {
      expect(seen[k] ?? 0, `${k} in ${JSON.stringify(seen)}`).toBeGreaterThan(0);
    }
  });

  it("over HTTP: POST /images answers an image or a coded error, and the server keeps serving", async () => {
    const key = await t.newUser("uploader");
    const tally: Tally = new Map();
    await fc.assert(
      fc.asyncProperty(upload, async (u) => {
        const res = await send(`${t.url}/images`, "POST", { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" }, u.bytes());
        if (checkRoute(res, u.how, tally) === "ok") expect((res.body as { id?: string }).id).toBeTruthy();
      }),
      { numRuns: runs(200), ...replay },
    );
    expect((await send(`${t.url}/healthz`, "GET", {})).status).toBe(200);
    expect(tally.get("ok") ?? 0, JSON.stringify(Object.fromEntries(tally))).toBeGreaterThan(0);
  });
});
