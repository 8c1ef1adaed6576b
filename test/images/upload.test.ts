import { createHash } from "node:crypto";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { DEFAULT_LIMITS } from "../../src/config.js";
import { ErrorCode } from "../../src/errors.js";
import { normalizeUpload } from "../../src/images/index.js";
import { isBareContainer } from "../../src/images/sniff.js";
import { SLOWDOWN } from "../helpers/wait.js";
import {
  asBytes,
  bombPng,
  expectAppError,
  noise,
  pixelAt,
  pngChunk,
  raw,
  sharpRaw,
  withChunkBeforeEnd,
} from "./fixtures.js";

const limits = { maxUploadBytes: DEFAULT_LIMITS.maxUploadBytes, maxImagePixels: DEFAULT_LIMITS.maxImagePixels };

async function encoded(format: "png" | "jpeg" | "webp", width = 40, height = 30): Promise<Uint8Array> {
  return asBytes(await sharpRaw(noise(width, height), width, height)[format]().toBuffer());
}

async function rawOf(bytes: Uint8Array) {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  return { rgb: asBytes(data), info };
}

describe("normalizeUpload: accepted formats", () => {
  it.each([
    ["png", "image/png"],
    ["jpeg", "image/jpeg"],
    ["webp", "image/webp"],
  ] as const)("accepts %s with its size and mime, storing plain RGB bytes unchanged", async (format, mime) => {
    const input = await encoded(format);
    const out = await normalizeUpload(input, limits);
    expect(out).toMatchObject({ mime, width: 40, height: 30 });
    // sharp's own output is bare 8-bit RGB, so nothing needs changing and the bytes are kept.
    expect(Buffer.from(out.bytes).equals(Buffer.from(input))).toBe(true);
    expect(out.id).toBe(createHash("sha256").update(input).digest("hex"));
  });

  it("gives an identical re-upload the same id", async () => {
    const input = await encoded("jpeg");
    const first = await normalizeUpload(input, limits);
    const second = await normalizeUpload(Uint8Array.from(input), limits);
    expect(second.id).toBe(first.id);
    expect(first.id).toMatch(/^[0-9a-f]{64}$/);
  });

  it("is idempotent: a re-encoded image uploaded again keeps its bytes and id", async () => {
    const rgba = raw(16, 16, 4, (x) => [200, 10, 10, x < 8 ? 0 : 255]);
    const first = await normalizeUpload(asBytes(await sharpRaw(rgba, 16, 16, 4).png().toBuffer()), limits);
    const again = await normalizeUpload(first.bytes, limits);
    expect(again.id).toBe(first.id);
  });
});

describe("normalizeUpload: rejections", () => {
  it("rejects a body over maxUploadBytes before looking at it", async () => {
    const text = new TextEncoder().encode("x".repeat(2048));
    const error = await expectAppError(
      normalizeUpload(text, { ...limits, maxUploadBytes: 1024 }),
      ErrorCode.PAYLOAD_TOO_LARGE,
      "body",
    );
    expect(error.expected).toBe("at most 1024 bytes");
    expect(error.got).toBe("2048 bytes");
  });

  it.each([
    ["a text file", new TextEncoder().encode("hello, this is not an image\n"), "text"],
    ["an SVG", new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>'), "SVG or XML text"],
    ["random bytes", Uint8Array.from([0x00, 0x9f, 0x13, 0x00, 0xfe, 0x01, 0x80]), "unknown bytes"],
    ["an empty body", new Uint8Array(0), "an empty body"],
  ])("rejects %s as UNSUPPORTED_MEDIA", async (_name, bytes, got) => {
    const error = await expectAppError(normalizeUpload(bytes, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    expect(error.expected).toBe("a PNG, JPEG or WebP image");
    expect(error.got).toBe(got);
  });

  it("rejects a GIF even though sharp could decode it", async () => {
    const gif = asBytes(await sharpRaw(noise(8, 8), 8, 8).gif().toBuffer());
    const error = await expectAppError(normalizeUpload(gif, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    expect(error.got).toBe("GIF");
  });

  it.each([
    ["png", "PNG"],
    ["jpeg", "JPEG"],
    ["webp", "WebP"],
  ] as const)("rejects a truncated %s", async (format, name) => {
    const whole = await encoded(format, 64, 64);
    const cut = whole.subarray(0, Math.floor(whole.length * 0.9));
    const error = await expectAppError(normalizeUpload(cut, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    expect(error.got).toBe(`a damaged or truncated ${name}`);
  });

  it("rejects truncation that sharp would decode without failOn (gray-filled)", async () => {
    for (const format of ["png", "jpeg"] as const) {
      const whole = await encoded(format, 64, 64);
      const cut = whole.subarray(0, whole.length - 40);
      // Without failOn, libvips fills the missing rows and succeeds: the check is doing the work.
      await expect(sharp(cut, { failOn: "none" }).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
      await expectAppError(normalizeUpload(cut, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    }
  });

  it("rejects a JPEG cut short but closed with an EOI marker (a bare file, so the kept-bytes path)", async () => {
    const whole = await encoded("jpeg", 64, 64);
    const forged = Uint8Array.from([...whole.subarray(0, Math.floor(whole.length / 2)), 0xff, 0xd9]);
    expect(isBareContainer(forged, "jpeg")).toBe(true);
    // failOn "error" lets this through; only "warning" catches it, which is why upload uses it.
    await expect(sharp(forged, { failOn: "error" }).raw().toBuffer()).resolves.toBeInstanceOf(Buffer);
    const error = await expectAppError(normalizeUpload(forged, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    expect(error.got).toBe("a damaged or truncated JPEG");
  });

  it("rejects a PNG signature followed by garbage as damaged", async () => {
    const bytes = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const error = await expectAppError(normalizeUpload(bytes, limits), ErrorCode.UNSUPPORTED_MEDIA, "image");
    expect(error.got).toBe("a damaged or truncated PNG");
  });

  it("rejects a 20000x20000 PNG header with a tiny body quickly, from the header alone", async () => {
    const bomb = bombPng(20000, 20000);
    expect(bomb.length).toBeLessThan(200);
    const started = performance.now();
    const error = await expectAppError(normalizeUpload(bomb, limits), ErrorCode.LIMIT_EXCEEDED, "image");
    // Decoding 400 million pixels would take seconds and gigabytes; the header check takes
    // milliseconds. The bound leaves room for a busy machine: the code and field above are the proof.
    expect(performance.now() - started).toBeLessThan(2000 * SLOWDOWN);
    expect(error.expected).toBe(`at most ${limits.maxImagePixels} pixels`);
    expect(error.got).toBe("20000x20000");
  });

  it("rejects a real image just over maxImagePixels", async () => {
    const png = await encoded("png", 100, 100);
    const error = await expectAppError(
      normalizeUpload(png, { ...limits, maxImagePixels: 9999 }),
      ErrorCode.LIMIT_EXCEEDED,
      "image",
    );
    expect(error.got).toBe("100x100");
  });
});

describe("normalizeUpload: normalisation", () => {
  it("flattens transparent pixels of an RGBA PNG on white", async () => {
    // Row 0: transparent red, opaque blue, half-transparent black, opaque green.
    const colours = [
      [255, 0, 0, 0],
      [0, 0, 255, 255],
      [0, 0, 0, 128],
      [0, 255, 0, 255],
    ];
    const rgba = raw(4, 2, 4, (x) => colours[x]!);
    const out = await normalizeUpload(asBytes(await sharpRaw(rgba, 4, 2, 4).png().toBuffer()), limits);
    expect(out).toMatchObject({ mime: "image/png", width: 4, height: 2 });
    const { rgb, info } = await rawOf(out.bytes);
    expect(info.channels).toBe(3);
    expect(pixelAt(rgb, 4, 0, 0)).toEqual([255, 255, 255]);
    expect(pixelAt(rgb, 4, 1, 0)).toEqual([0, 0, 255]);
    // 50% black over white: about 127 in each channel.
    for (const v of pixelAt(rgb, 4, 2, 0)) expect(Math.abs(v - 127)).toBeLessThanOrEqual(1);
    expect(pixelAt(rgb, 4, 3, 0)).toEqual([0, 255, 0]);
  });

  it("applies EXIF orientation 6 (rotate 90° clockwise) and drops the tag", async () => {
    // 32x16, left half red, right half blue. Rotated clockwise, the left half ends up on top.
    const pixels = raw(32, 16, 3, (x) => (x < 16 ? [255, 0, 0] : [0, 0, 255]));
    const jpeg = asBytes(await sharpRaw(pixels, 32, 16).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer());
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const out = await normalizeUpload(jpeg, limits);
    expect(out).toMatchObject({ mime: "image/jpeg", width: 16, height: 32 });
    const meta = await sharp(out.bytes).metadata();
    expect([meta.width, meta.height, meta.orientation ?? 1]).toEqual([16, 32, 1]);
    const { rgb } = await rawOf(out.bytes);
    const [topR, , topB] = pixelAt(rgb, 16, 8, 4);
    const [bottomR, , bottomB] = pixelAt(rgb, 16, 8, 28);
    expect(topR!).toBeGreaterThan(200);
    expect(topB!).toBeLessThan(60);
    expect(bottomB!).toBeGreaterThan(200);
    expect(bottomR!).toBeLessThan(60);
  });

  it("strips EXIF from a JPEG", async () => {
    const jpeg = asBytes(
      await sharpRaw(noise(24, 24), 24, 24).jpeg().withExif({ IFD0: { Copyright: "someone", Artist: "me" } }).toBuffer(),
    );
    expect((await sharp(jpeg).metadata()).exif).toBeDefined();
    const out = await normalizeUpload(jpeg, limits);
    expect(Buffer.from(out.bytes).equals(Buffer.from(jpeg))).toBe(false);
    const meta = await sharp(out.bytes).metadata();
    expect(meta.exif).toBeUndefined();
    expect(meta.hasProfile).toBe(false);
  });

  it("strips PNG text chunks and bytes after IEND, keeping the pixels", async () => {
    const png = await encoded("png", 12, 12);
    const text = pngChunk("tEXt", new TextEncoder().encode("Comment\0secret"));
    for (const input of [withChunkBeforeEnd(png, text), Uint8Array.from([...png, 1, 2, 3])]) {
      const out = await normalizeUpload(input, limits);
      expect(Buffer.from(out.bytes).includes(Buffer.from("secret"))).toBe(false);
      expect(out.bytes.length).not.toBe(input.length);
      expect((await rawOf(out.bytes)).rgb).toEqual((await rawOf(png)).rgb);
    }
  });

  it("converts 16-bit and greyscale PNGs to 8-bit RGB", async () => {
    const deep = asBytes(await sharpRaw(noise(10, 10), 10, 10).toColourspace("rgb16").png().toBuffer());
    const grey = asBytes(await sharpRaw(noise(10, 10), 10, 10).toColourspace("b-w").png().toBuffer());
    expect((await sharp(deep).metadata()).depth).toBe("ushort");
    expect((await sharp(grey).metadata()).channels).toBe(1);
    for (const input of [deep, grey]) {
      const meta = await sharp((await normalizeUpload(input, limits)).bytes).metadata();
      expect([meta.depth, meta.channels, meta.space]).toEqual(["uchar", 3, "srgb"]);
    }
  });

  it("keeps a lossless WebP lossless when it must re-encode it (alpha)", async () => {
    const rgba = raw(8, 8, 4, (x, y) => [x * 30, y * 30, 77, x === 0 ? 0 : 255]);
    const webp = asBytes(await sharpRaw(rgba, 8, 8, 4).webp({ lossless: true }).toBuffer());
    const out = await normalizeUpload(webp, limits);
    expect(Buffer.from(out.bytes.subarray(12, 16)).toString("latin1")).toBe("VP8L");
    const { rgb } = await rawOf(out.bytes);
    expect(pixelAt(rgb, 8, 0, 3)).toEqual([255, 255, 255]);
    expect(pixelAt(rgb, 8, 5, 2)).toEqual([150, 60, 77]);
  });
});
