/**
 * Validation and normalisation of uploaded images. Checks run cheapest first: body size, magic
 * bytes, then the header's pixel count, all before any pixel is decoded, so a decompression bomb
 * costs a header read. The stored image is 8-bit sRGB RGB, upright, opaque and metadata-free; a file
 * that already is exactly that is stored byte for byte, so re-uploading it yields the same id.
 * Knows nothing about storage or HTTP: it takes bytes and returns bytes plus facts.
 */
import { createHash } from "node:crypto";
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from "sharp";
import { AppError, ErrorCode } from "../errors.js";
import { formatToMime, type ImageFormat, type ImageMime } from "./mime.js";
import { describeBytes, isBareContainer, isLosslessWebp, sniffFormat } from "./sniff.js";

export interface UploadLimits {
  maxUploadBytes: number;
  maxImagePixels: number;
}

export interface NormalizedImage {
  /** sha256 hex of `bytes`: content addressing, so identical stored bytes share one id. */
  id: string;
  bytes: Uint8Array;
  mime: ImageMime;
  /** Displayed size, after EXIF orientation. */
  width: number;
  height: number;
}

const FORMAT_NAME: Record<ImageFormat, string> = { png: "PNG", jpeg: "JPEG", webp: "WebP" };

/** JPEG re-encodes are sources for editing, so keep them close to the upload. */
const JPEG_QUALITY = 95;
const WEBP_QUALITY = 95;

/**
 * Validates an upload and returns the bytes to store.
 * Throws AppError: PAYLOAD_TOO_LARGE (field "body") over `maxUploadBytes`; UNSUPPORTED_MEDIA (field
 * "image") when the bytes are not PNG, JPEG or WebP, or are damaged or truncated; LIMIT_EXCEEDED
 * (field "image") when the header's width * height is over `maxImagePixels`.
 */
export async function normalizeUpload(bytes: Uint8Array, limits: UploadLimits): Promise<NormalizedImage> {
  if (bytes.byteLength > limits.maxUploadBytes) {
    throw failure(ErrorCode.PAYLOAD_TOO_LARGE, "body", `at most ${limits.maxUploadBytes} bytes`, `${bytes.byteLength} bytes`);
  }
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw failure(ErrorCode.UNSUPPORTED_MEDIA, "image", "a PNG, JPEG or WebP image", describeBytes(bytes));
  }
  const meta = await readHeader(bytes, format);
  if (meta.width * meta.height > limits.maxImagePixels) {
    throw failure(ErrorCode.LIMIT_EXCEEDED, "image", `at most ${limits.maxImagePixels} pixels`, `${meta.width}x${meta.height}`);
  }

  // limitInputPixels: a second guard, libvips refuses to decode past it even if the header read
  // above was fooled. failOn "warning" (sharp's default, spelled out because it matters): "none"
  // decodes truncated PNG/JPEG as gray-filled images, and "error" still accepts a JPEG whose scan
  // data was cut short and then closed with an EOI marker (libjpeg calls that a warning; see the
  // tests). The cost is rejecting files with benign decoder warnings, which we accept for uploads.
  const decodeOptions: SharpOptions = { failOn: "warning", limitInputPixels: limits.maxImagePixels, autoOrient: true };

  if (isBareContainer(bytes, format) && isPlainRgb(meta)) {
    // Decode anyway: a clean header does not prove the pixel data is complete.
    const { info } = await decode(sharp(bytes, decodeOptions).raw(), format);
    return stored(bytes, format, info.width, info.height);
  }

  const pipeline = sharp(bytes, decodeOptions)
    .flatten({ background: "#ffffff" }) // transparent pixels become white, as on a page
    .toColourspace("srgb") // also converts CMYK, grey and 16-bit input to 8-bit RGB
    .removeAlpha();
  // No keepMetadata()/withMetadata(): sharp's default strips EXIF, ICC, XMP and text chunks.
  const { data, info } = await decode(encoderFor(pipeline, format, bytes), format);
  return stored(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), format, info.width, info.height);
}

function failure(code: ErrorCode, field: string, expected: string, got: string): AppError {
  return new AppError(code, `${field}: expected ${expected}, got ${got}`, { field, expected, got });
}

function damaged(format: ImageFormat, cause: unknown): AppError {
  const expected = "a PNG, JPEG or WebP image";
  const got = `a damaged or truncated ${FORMAT_NAME[format]}`;
  return new AppError(ErrorCode.UNSUPPORTED_MEDIA, `image: expected ${expected}, got ${got}`, {
    field: "image",
    expected,
    got,
    cause,
  });
}

/**
 * Header-only read. `limitInputPixels: false` because sharp's metadata() otherwise enforces its own
 * default limit (0x3FFF²) and throws before telling us the dimensions we want to report.
 */
async function readHeader(bytes: Uint8Array, format: ImageFormat): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw damaged(format, error);
  }
  // The magic bytes and libvips must agree; a mismatch means a forged or mangled header.
  if (meta.format !== format || !(meta.width > 0 && meta.height > 0)) throw damaged(format, undefined);
  return meta;
}

/** Already what we store: opaque, upright, single-frame 8-bit sRGB with three channels. */
function isPlainRgb(meta: Metadata): boolean {
  return (
    meta.channels === 3 &&
    meta.space === "srgb" &&
    meta.depth === "uchar" &&
    !meta.hasAlpha &&
    !meta.hasProfile &&
    (meta.orientation ?? 1) === 1 &&
    (meta.pages ?? 1) === 1 &&
    (meta.bitsPerSample ?? 8) <= 8
  );
}

function encoderFor(pipeline: Sharp, format: ImageFormat, source: Uint8Array): Sharp {
  switch (format) {
    case "png":
      // Adaptive filtering: about a third of the default's size at the same speed (docs/stack.md gotcha 9).
      return pipeline.png({ adaptiveFiltering: true });
    case "jpeg":
      return pipeline.jpeg({ quality: JPEG_QUALITY });
    case "webp":
      // A lossless source stays lossless; re-encoding it lossy would lose detail for nothing.
      return isLosslessWebp(source) ? pipeline.webp({ lossless: true }) : pipeline.webp({ quality: WEBP_QUALITY });
  }
}

async function decode(pipeline: Sharp, format: ImageFormat): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await pipeline.toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw damaged(format, error);
  }
}

function stored(bytes: Uint8Array, format: ImageFormat, width: number, height: number): NormalizedImage {
  const id = createHash("sha256").update(bytes).digest("hex");
  return { id, bytes, mime: formatToMime(format), width, height };
}
