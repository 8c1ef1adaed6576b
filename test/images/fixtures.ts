/**
 * Test images for the images module: raw RGB(A) built pixel by pixel, encoded with sharp, and PNG
 * files assembled chunk by chunk for headers sharp would never write (decompression bombs).
 */
import zlib from "node:zlib";
import sharp from "sharp";
import { expect } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";

export type Pixel = readonly number[];

/** Raw interleaved pixels, [H * W * channels], from a function of (x, y). */
export function raw(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => Pixel): Uint8Array {
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set(pixel(x, y).slice(0, channels), (y * width + x) * channels);
  }
  return out;
}

/** Deterministic "photo-like" RGB: gradients plus a hash, so every pixel differs. */
export function noise(width: number, height: number): Uint8Array {
  return raw(width, height, 3, (x, y) => [(x * 5 + ((x * y * 31) % 17)) & 255, (y * 7) & 255, ((x + y) * 3) & 255]);
}

export function sharpRaw(pixels: Uint8Array, width: number, height: number, channels: 3 | 4 = 3) {
  return sharp(pixels, { raw: { width, height, channels } });
}

export function asBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** One PNG chunk: length, type, data, CRC-32 of type + data (ISO/IEC 15948 §5.3). */
export function pngChunk(type: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const typed = Buffer.concat([Buffer.from(type, "latin1"), data]);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  typed.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(typed), 8 + data.length);
  return asBytes(out);
}

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** A PNG whose IHDR claims width x height 8-bit RGB but whose IDAT holds only a few bytes. */
export function bombPng(width: number, height: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  const idat = zlib.deflateSync(Buffer.alloc(16)); // one filter byte + 5 pixels of a 20000-px row
  return asBytes(
    Buffer.concat([PNG_SIGNATURE, pngChunk("IHDR", ihdr), pngChunk("IDAT", idat), pngChunk("IEND")]),
  );
}

/** Inserts a chunk just before IEND (the last 12 bytes of a PNG sharp wrote). */
export function withChunkBeforeEnd(png: Uint8Array, chunk: Uint8Array): Uint8Array {
  return asBytes(Buffer.concat([png.subarray(0, png.length - 12), chunk, png.subarray(png.length - 12)]));
}

/**
 * Awaits a rejection and checks it is an AppError with `code` whose field, expected and got are
 * set and all named in the message. Returns the error for further checks.
 */
export async function expectAppError(promise: Promise<unknown>, code: ErrorCode, field: string): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  expect(appError.code).toBe(code);
  expect(appError.field).toBe(field);
  expect(appError.expected).toBeTruthy();
  expect(appError.got).toBeTruthy();
  expect(appError.message).toContain(field);
  expect(appError.message).toContain(appError.expected!);
  expect(appError.message).toContain(appError.got!);
  return appError;
}

/** Pixel (x, y) of raw RGB. */
export function pixelAt(rgb: Uint8Array, width: number, x: number, y: number): number[] {
  const at = (y * width + x) * 3;
  return [rgb[at]!, rgb[at + 1]!, rgb[at + 2]!];
}
