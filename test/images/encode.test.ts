import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../src/errors.js";
import { centerCrop, decodeToRgb, encodeRgb, padToSquare, sniffFormat, toDataUrl } from "../../src/images/index.js";
import { expectAppError, noise, pixelAt, raw } from "./fixtures.js";

/** Red carries the column, green the row, so every pixel says where it came from. */
const coords = (width: number, height: number) => raw(width, height, 3, (x, y) => [x * 10, y * 10, 200]);

describe("encodeRgb / decodeToRgb", () => {
  it.each([
    ["a preview-sized image", 16, 8],
    ["a full-sized image (adaptive filtering path)", 300, 260],
  ])("round-trips %s through PNG exactly", async (_name, width, height) => {
    const rgb = noise(width, height);
    const png = await encodeRgb(rgb, width, height, "png");
    expect(sniffFormat(png)).toBe("png");
    const back = await decodeToRgb(png);
    expect([back.width, back.height]).toEqual([width, height]);
    // Buffer.equals: vitest's deep equality walks a 200k-element typed array for seconds.
    expect(Buffer.from(back.rgb).equals(Buffer.from(rgb))).toBe(true);
  });

  it("upscales with nearest neighbour, one exact block per source pixel", async () => {
    const rgb = Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]); // 2x2
    const back = await decodeToRgb(await encodeRgb(rgb, 2, 2, "png", { resizeTo: 4 }));
    expect([back.width, back.height]).toEqual([4, 4]);
    expect(pixelAt(back.rgb, 4, 0, 0)).toEqual([255, 0, 0]);
    expect(pixelAt(back.rgb, 4, 1, 1)).toEqual([255, 0, 0]);
    expect(pixelAt(back.rgb, 4, 2, 1)).toEqual([0, 255, 0]);
    expect(pixelAt(back.rgb, 4, 1, 3)).toEqual([0, 0, 255]);
    expect(pixelAt(back.rgb, 4, 3, 3)).toEqual([10, 20, 30]);
  });

  it.each(["jpeg", "webp"] as const)("encodes %s that decodes to the same size and close colours", async (format) => {
    const rgb = raw(32, 24, 3, () => [40, 120, 200]);
    const bytes = await encodeRgb(rgb, 32, 24, format, { quality: 90 });
    expect(sniffFormat(bytes)).toBe(format);
    const back = await decodeToRgb(bytes);
    expect([back.width, back.height]).toEqual([32, 24]);
    const [r, g, b] = pixelAt(back.rgb, 32, 16, 12);
    expect(Math.abs(r! - 40) + Math.abs(g! - 120) + Math.abs(b! - 200)).toBeLessThan(12);
  });

  it("rejects raw data whose length does not match its size", async () => {
    const error = await expectAppError(encodeRgb(new Uint8Array(10), 2, 2, "png"), ErrorCode.BAD_INPUT, "rgb");
    expect(error.expected).toBe("2x2x3 = 12 bytes");
    expect(error.got).toBe("10 bytes");
  });

  it("rejects an out-of-range quality and a non-integer resize", async () => {
    const rgb = new Uint8Array(12);
    await expectAppError(encodeRgb(rgb, 2, 2, "jpeg", { quality: 0 }), ErrorCode.BAD_INPUT, "quality");
    await expectAppError(encodeRgb(rgb, 2, 2, "png", { resizeTo: 2.5 }), ErrorCode.BAD_INPUT, "resizeTo");
  });

  it("rejects bytes that do not decode", async () => {
    const bytes = new TextEncoder().encode("not an image");
    await expectAppError(decodeToRgb(bytes), ErrorCode.UNSUPPORTED_MEDIA, "image");
  });

  it("decodes an RGBA image flattened on white", async () => {
    const rgba = raw(2, 1, 4, (x) => (x === 0 ? [0, 0, 0, 0] : [9, 8, 7, 255]));
    const png = await sharp(rgba, { raw: { width: 2, height: 1, channels: 4 } }).png().toBuffer();
    const back = await decodeToRgb(png);
    expect(Array.from(back.rgb)).toEqual([255, 255, 255, 9, 8, 7]);
  });
});

describe("decodeToRgb fit", () => {
  it("crops a landscape image to its centered square (editing)", async () => {
    const png = await encodeRgb(coords(6, 4), 6, 4, "png");
    const out = await decodeToRgb(png, { fit: "crop" });
    expect([out.width, out.height]).toEqual([4, 4]);
    expect(pixelAt(out.rgb, 4, 0, 0)).toEqual([10, 0, 200]); // source column 1
    expect(pixelAt(out.rgb, 4, 3, 3)).toEqual([40, 30, 200]); // source column 4, row 3
  });

  it("puts an odd leftover of a crop at the right/bottom, as crop2square's floor division does", () => {
    const portrait = centerCrop({ rgb: coords(2, 5), width: 2, height: 5 });
    expect([portrait.width, portrait.height]).toEqual([2, 2]);
    expect(pixelAt(portrait.rgb, 2, 0, 0)).toEqual([0, 10, 200]); // top = floor(3 / 2) = 1
    expect(pixelAt(portrait.rgb, 2, 1, 1)).toEqual([10, 20, 200]);
  });

  it("pads a landscape image with gray 127 above and below (understanding)", async () => {
    const png = await encodeRgb(coords(4, 2), 4, 2, "png");
    const out = await decodeToRgb(png, { fit: "pad" });
    expect([out.width, out.height]).toEqual([4, 4]);
    for (let x = 0; x < 4; x++) {
      expect(pixelAt(out.rgb, 4, x, 0)).toEqual([127, 127, 127]);
      expect(pixelAt(out.rgb, 4, x, 1)).toEqual([x * 10, 0, 200]);
      expect(pixelAt(out.rgb, 4, x, 2)).toEqual([x * 10, 10, 200]);
      expect(pixelAt(out.rgb, 4, x, 3)).toEqual([127, 127, 127]);
    }
  });

  it("pads a portrait image left/right with a chosen colour, odd leftover on the right", () => {
    const out = padToSquare({ rgb: coords(1, 4), width: 1, height: 4 }, [1, 2, 3]);
    expect([out.width, out.height]).toEqual([4, 4]);
    expect(pixelAt(out.rgb, 4, 0, 2)).toEqual([1, 2, 3]);
    expect(pixelAt(out.rgb, 4, 1, 2)).toEqual([0, 20, 200]); // left = floor(3 / 2) = 1
    expect(pixelAt(out.rgb, 4, 2, 2)).toEqual([1, 2, 3]);
    expect(pixelAt(out.rgb, 4, 3, 2)).toEqual([1, 2, 3]);
  });

  it("crops, then resizes to size x size", async () => {
    // 16x8: red, green, blue quarters of 4, 8, 4 columns; the centered 8x8 square is all green.
    const rgb = raw(16, 8, 3, (x) => (x < 4 ? [255, 0, 0] : x < 12 ? [0, 255, 0] : [0, 0, 255]));
    const out = await decodeToRgb(await encodeRgb(rgb, 16, 8, "png"), { fit: "crop", size: 4 });
    expect([out.width, out.height]).toEqual([4, 4]);
    expect(Array.from(out.rgb)).toEqual(Array.from(raw(4, 4, 3, () => [0, 255, 0])));
  });

  it("pads, then resizes, so the gray bands scale with the image", async () => {
    const rgb = raw(16, 8, 3, () => [0, 200, 0]);
    const out = await decodeToRgb(await encodeRgb(rgb, 16, 8, "png"), { fit: "pad", size: 32 });
    expect([out.width, out.height]).toEqual([32, 32]);
    expect(pixelAt(out.rgb, 32, 16, 2)).toEqual([127, 127, 127]); // in the top band (rows 0-7)
    expect(pixelAt(out.rgb, 32, 16, 16)).toEqual([0, 200, 0]); // center of the image
    expect(pixelAt(out.rgb, 32, 16, 29)).toEqual([127, 127, 127]); // in the bottom band (rows 24-31)
  });

  it("rejects a bad size", async () => {
    const png = await encodeRgb(coords(2, 2), 2, 2, "png");
    await expectAppError(decodeToRgb(png, { size: 0 }), ErrorCode.BAD_INPUT, "size");
  });
});

describe("toDataUrl", () => {
  it("base64-encodes the bytes behind the mime type", () => {
    const bytes = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const url = toDataUrl(bytes.subarray(1), "image/png");
    expect(url).toBe(`data:image/png;base64,${Buffer.from([0x50, 0x4e, 0x47, 0, 255]).toString("base64")}`);
  });
});
