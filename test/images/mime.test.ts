import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { describeBytes, extToMime, isImageMime, mimeToExt, sniffFormat } from "../../src/images/index.js";
import { isBareContainer, isLosslessWebp } from "../../src/images/sniff.js";
import { asBytes, noise } from "./fixtures.js";

describe("mime helpers", () => {
  it("maps mime types to extensions and back", () => {
    expect(mimeToExt("image/png")).toBe("png");
    expect(mimeToExt("image/jpeg")).toBe("jpg");
    expect(mimeToExt("image/webp")).toBe("webp");
    expect(extToMime("JPEG")).toBe("image/jpeg");
    expect(extToMime(".jpg")).toBe("image/jpeg");
    expect(extToMime("holiday.photo.webp")).toBe("image/webp");
    expect(extToMime("png")).toBe("image/png");
  });

  it("answers undefined for extensions we do not store", () => {
    expect(extToMime("gif")).toBeUndefined();
    expect(extToMime("constructor")).toBeUndefined(); // not an inherited Object property
    expect(isImageMime("image/gif")).toBe(false);
    expect(isImageMime("image/webp")).toBe(true);
  });
});

describe("sniffing", () => {
  it("names common non-image uploads", () => {
    const ascii = (s: string) => new TextEncoder().encode(s);
    expect(describeBytes(ascii("GIF89a\x01\x00"))).toBe("GIF");
    expect(describeBytes(ascii("%PDF-1.7\n"))).toBe("PDF");
    expect(describeBytes(ascii("RIFF\x10\x00\x00\x00WAVEfmt "))).toBe("RIFF (not WebP)");
    expect(describeBytes(ascii("\x00\x00\x00\x1cftypavif"))).toBe("AVIF");
    expect(describeBytes(ascii("héllo wörld"))).toBe("text");
    expect(sniffFormat(ascii("RIFF\x10\x00\x00\x00WAVEfmt "))).toBeUndefined();
    expect(sniffFormat(Uint8Array.from([0xff, 0xd8]))).toBeUndefined();
  });

  it("sees JPEG metadata segments, so such files are re-encoded rather than kept", async () => {
    const pixels = sharp(noise(8, 8), { raw: { width: 8, height: 8, channels: 3 } });
    const plain = asBytes(await pixels.clone().jpeg().toBuffer());
    const progressive = asBytes(await pixels.clone().jpeg({ progressive: true }).toBuffer());
    const withExif = asBytes(await pixels.clone().jpeg().withExif({ IFD0: { Artist: "me" } }).toBuffer());
    expect(isBareContainer(plain, "jpeg")).toBe(true);
    expect(isBareContainer(progressive, "jpeg")).toBe(true);
    expect(isBareContainer(withExif, "jpeg")).toBe(false);
    expect(isBareContainer(Uint8Array.from([...plain, 0]), "jpeg")).toBe(false);
  });

  it("tells lossless from lossy WebP", async () => {
    const pixels = sharp(noise(8, 8), { raw: { width: 8, height: 8, channels: 3 } });
    expect(isLosslessWebp(asBytes(await pixels.clone().webp({ lossless: true }).toBuffer()))).toBe(true);
    expect(isLosslessWebp(asBytes(await pixels.clone().webp().toBuffer()))).toBe(false);
  });
});
