/**
 * Conversions between stored image bytes and the raw RGB the engine works on: encoding results and
 * previews, and decoding a stored image to the square input a task needs (center crop for editing,
 * gray padding for understanding, as UniPic-1's scripts do). Raw RGB is always interleaved 8-bit,
 * row-major, [H * W * 3]. Knows nothing about the engine's tensors or the store.
 */
import sharp, { type ResizeOptions, type Sharp } from "sharp";
import { AppError, ErrorCode } from "../errors.js";
import type { ImageFormat, ImageMime } from "./mime.js";

export interface RgbImage {
  rgb: Uint8Array; // [H * W * 3]
  width: number;
  height: number;
}

export interface EncodeOptions {
  /** Nearest-neighbour resize to a `resizeTo` x `resizeTo` square (previews of a token grid). */
  resizeTo?: number;
  /** JPEG/WebP quality, 1-100. Ignored for PNG, which is lossless. */
  quality?: number;
}

export interface DecodeOptions {
  /** Resize to `size` x `size` (bicubic) after `fit` made the image square. */
  size?: number;
  /** "crop": center crop to the short side (editing, UniPic-1 `crop2square`).
   *  "pad": center on a square of `padColor` (understanding, `expand2square`). Default "pad". */
  fit?: "crop" | "pad";
  /** Default [127, 127, 127], the gray of UniPic-1's `image2text.py`. */
  padColor?: [number, number, number];
}

const DEFAULT_QUALITY = 85;
const DEFAULT_PAD: [number, number, number] = [127, 127, 127];
/** Up to 256x256 output counts as a preview (docs/stack.md section 4: 4-5 ms at 256² with these settings). */
const PREVIEW_MAX_PIXELS = 256 * 256;

/**
 * Encodes raw RGB as PNG, WebP or JPEG.
 * Throws AppError BAD_INPUT when `rgb` is not width * height * 3 bytes or a size is not a positive integer.
 */
export async function encodeRgb(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: ImageFormat,
  opts: EncodeOptions = {},
): Promise<Uint8Array> {
  checkRaw(rgb, width, height);
  let pipeline = sharp(rgb, { raw: { width, height, channels: 3 } });
  let outPixels = width * height;
  if (opts.resizeTo !== undefined) {
    checkSide("resizeTo", opts.resizeTo);
    // Nearest keeps each token's block crisp and is exact for integer factors (64 -> 256).
    pipeline = pipeline.resize(opts.resizeTo, opts.resizeTo, { kernel: "nearest", fit: "fill" });
    outPixels = opts.resizeTo * opts.resizeTo;
  }
  const quality = opts.quality ?? DEFAULT_QUALITY;
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw AppError.badInput("quality", "an integer in [1, 100]", quality);
  }
  const out = await encoder(pipeline, format, quality, outPixels <= PREVIEW_MAX_PIXELS).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Encoder settings. Previews are small and sent many times per job, so they use the fastest
 * settings (PNG level 1, WebP effort 0): size barely matters at 64-256 px. Full images use PNG
 * adaptive filtering (a third of the default's size, docs/stack.md gotcha 9) and WebP effort 2, which
 * is ~2x faster than the default 4 for ~10% more bytes on a 2-core box.
 */
function encoder(pipeline: Sharp, format: ImageFormat, quality: number, preview: boolean): Sharp {
  switch (format) {
    case "png":
      return preview
        ? pipeline.png({ compressionLevel: 1 })
        : pipeline.png({ adaptiveFiltering: true });
    case "webp":
      return pipeline.webp({ quality, effort: preview ? 0 : 2 });
    case "jpeg":
      return pipeline.jpeg({ quality });
  }
}

/**
 * Decodes PNG/JPEG/WebP bytes to upright, opaque (flattened on white) RGB, then optionally squares
 * and resizes it as `opts` says.
 * Throws AppError UNSUPPORTED_MEDIA when the bytes do not decode; BAD_INPUT for a bad `size`.
 */
export async function decodeToRgb(bytes: Uint8Array, opts: DecodeOptions = {}): Promise<RgbImage> {
  let image: RgbImage;
  try {
    // Stored bytes passed upload's strict check; "error" still refuses truncated data here without
    // failing a job over a benign warning in an image that did not come through normalizeUpload.
    const { data, info } = await sharp(bytes, { failOn: "error", autoOrient: true })
      .flatten({ background: "#ffffff" })
      .toColourspace("srgb")
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    image = { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (error) {
    const expected = "a PNG, JPEG or WebP image";
    throw new AppError(ErrorCode.UNSUPPORTED_MEDIA, `image: expected ${expected}, got bytes that do not decode`, {
      field: "image",
      expected,
      got: "bytes that do not decode",
      cause: error,
    });
  }
  if (opts.fit === undefined && opts.size === undefined) return image;
  if (opts.size !== undefined) checkSide("size", opts.size);
  // Square first, then resize, in that order as PIL does in the reference scripts. Done on raw
  // bytes because sharp's fixed pipeline order would extend (pad) only after resizing.
  const square = (opts.fit ?? "pad") === "crop" ? centerCrop(image) : padToSquare(image, opts.padColor ?? DEFAULT_PAD);
  if (opts.size === undefined || opts.size === square.width) return square;
  return resizeBicubic(square, opts.size);
}

/** The largest centered square; odd leftovers go right/bottom, like `crop2square`'s `//`. */
export function centerCrop(image: RgbImage): RgbImage {
  const { rgb, width, height } = image;
  const side = Math.min(width, height);
  if (width === height) return image;
  const left = Math.floor((width - side) / 2);
  const top = Math.floor((height - side) / 2);
  const out = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    const from = ((top + y) * width + left) * 3;
    out.set(rgb.subarray(from, from + side * 3), y * side * 3);
  }
  return { rgb: out, width: side, height: side };
}

/** The image centered on a square of `color`; odd leftovers go right/bottom, like `expand2square`. */
export function padToSquare(image: RgbImage, color: [number, number, number]): RgbImage {
  const { rgb, width, height } = image;
  if (color.length !== 3 || color.some((c) => !Number.isInteger(c) || c < 0 || c > 255)) {
    throw AppError.badInput("padColor", "three integers in [0, 255]", color.join(","));
  }
  if (width === height) return image;
  const side = Math.max(width, height);
  const left = Math.floor((side - width) / 2);
  const top = Math.floor((side - height) / 2);
  const out = new Uint8Array(side * side * 3);
  for (let i = 0; i < side * side; i++) out.set(color, i * 3);
  for (let y = 0; y < height; y++) {
    out.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * side + left) * 3);
  }
  return { rgb: out, width: side, height: side };
}

/**
 * Bicubic resize, to approximate PIL's default `resize` filter: sharp's "cubic" kernel is
 * Catmull-Rom (a = -0.5, PIL's BICUBIC), and like PIL it widens the kernel when downscaling.
 * Not bit-exact with PIL (different rounding and fixed-point arithmetic).
 */
async function resizeBicubic(image: RgbImage, size: number): Promise<RgbImage> {
  const options: ResizeOptions = { kernel: "cubic", fit: "fill" };
  const data = await sharp(image.rgb, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(size, size, options)
    .raw()
    .toBuffer();
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: size, height: size };
}

/** A `data:` URL for inline display (previews over GraphQL subscriptions). */
export function toDataUrl(bytes: Uint8Array, mime: ImageMime): string {
  return `data:${mime};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")}`;
}

function checkRaw(rgb: Uint8Array, width: number, height: number): void {
  checkSide("width", width);
  checkSide("height", height);
  if (rgb.byteLength !== width * height * 3) {
    throw AppError.badInput("rgb", `${width}x${height}x3 = ${width * height * 3} bytes`, rgb);
  }
}

function checkSide(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1 || value > 16384) {
    throw AppError.badInput(field, "an integer in [1, 16384]", value);
  }
}
