/**
 * Byte-level facts about an upload, read without decoding: which format the magic bytes say it is
 * (a client's declared content type is never trusted), what a rejected file looks like (for the
 * error's `got`), and whether a file's container holds nothing but pixel data, which is what lets
 * upload.ts store it byte for byte. Knows nothing about sharp or limits.
 */
import type { ImageFormat } from "./mime.js";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  if (bytes.length < at + prefix.length) return false;
  return prefix.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

/** The format the magic bytes announce, or undefined for anything but PNG, JPEG and WebP. */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return "png";
  // SOI followed by the first marker's 0xFF; a lone FF D8 is too weak a signal.
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return "jpeg";
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === "RIFF" && ascii(bytes, 8, 4) === "WEBP") return "webp";
  return undefined;
}

/** A short, human name for what a non-image upload looks like, for an error's `got`. */
export function describeBytes(bytes: Uint8Array): string {
  if (bytes.length === 0) return "an empty body";
  const head = ascii(bytes, 0, 12);
  if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) return "GIF";
  if (head.startsWith("BM")) return "BMP";
  if (head.startsWith("II*\0") || head.startsWith("MM\0*")) return "TIFF";
  if (head.startsWith("%PDF")) return "PDF";
  if (head.startsWith("PK\x03\x04")) return "ZIP";
  if (head.startsWith("\0\0\x01\0")) return "ICO";
  if (head.slice(4, 8) === "ftyp") {
    const brand = head.slice(8, 12);
    if (brand.startsWith("avi")) return "AVIF";
    if (brand.startsWith("hei") || brand.startsWith("mif")) return "HEIC";
    return "an MP4/ISO media file";
  }
  if (head.startsWith("RIFF")) return "RIFF (not WebP)";
  if (startsWith(bytes, [0xff, 0x0a]) || head.startsWith("\0\0\0\x0cJXL ")) return "JPEG XL";
  if (looksLikeText(bytes.subarray(0, 1024))) {
    const start = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
    return start.startsWith("<svg") || start.startsWith("<?xml") ? "SVG or XML text" : "text";
  }
  return "unknown bytes";
}

/** UTF-8 without control characters other than tab, newline, form feed and carriage return. */
function looksLikeText(prefix: Uint8Array): boolean {
  let decoded: string;
  try {
    // `stream: true` tolerates a multi-byte character cut by the prefix boundary.
    decoded = new TextDecoder("utf-8", { fatal: true }).decode(prefix, { stream: true });
  } catch {
    return false;
  }
  return !/[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(decoded);
}

/**
 * True when the file holds pixel data and nothing else: no EXIF, ICC, XMP, text or comment chunks,
 * no alpha or animation containers, and no bytes after the format's end marker. Such a file can be
 * stored as uploaded; anything else is re-encoded, which strips what it carried. A false answer is
 * always safe (it only costs a re-encode), so unusual-but-valid layouts may answer false.
 */
export function isBareContainer(bytes: Uint8Array, format: ImageFormat): boolean {
  switch (format) {
    case "png":
      return isBarePng(bytes);
    case "jpeg":
      return isBareJpeg(bytes);
    case "webp":
      return isBareWebp(bytes);
  }
}

function u32be(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function u32le(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/**
 * PNG (ISO/IEC 15948 §5.3): length, type, data, CRC chunks. Allowed: the critical chunks, pHYs
 * (pixel density, which sharp itself writes) and sRGB (which only confirms the colour space).
 */
const BARE_PNG_CHUNKS = new Set(["IHDR", "PLTE", "IDAT", "IEND", "pHYs", "sRGB"]);

function isBarePng(bytes: Uint8Array): boolean {
  const allowed = BARE_PNG_CHUNKS;
  let at = PNG_SIGNATURE.length;
  while (at + 12 <= bytes.length) {
    const length = u32be(bytes, at);
    const type = ascii(bytes, at + 4, 4);
    if (!allowed.has(type)) return false;
    at += 12 + length;
    if (type === "IEND") return at === bytes.length;
  }
  return false;
}

/**
 * JPEG (ITU T.81 Annex B): marker segments, then entropy-coded scans in which 0xFF is followed by a
 * stuffed 0x00 or a restart marker. Allowed segments: JFIF APP0, tables, frame and scan headers.
 * APP1-15 (EXIF, XMP, ICC, Adobe) and COM are metadata, so their presence answers false.
 */
function isBareJpeg(bytes: Uint8Array): boolean {
  let at = 2; // past SOI
  while (at + 1 < bytes.length) {
    if (bytes[at] !== 0xff) {
      at += 1; // entropy-coded data
      continue;
    }
    const marker = bytes[at + 1]!;
    if (marker === 0x00 || marker === 0xff || (marker >= 0xd0 && marker <= 0xd7)) {
      at += marker === 0xff ? 1 : 2; // stuffed byte, fill byte, or restart marker
      continue;
    }
    if (marker === 0xd9) return at + 2 === bytes.length; // EOI must end the file
    const isTableOrFrame =
      (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc8) || // SOFn, DHT (C4), DAC (CC)
      marker === 0xda || // SOS
      marker === 0xdb || // DQT
      marker === 0xdd; // DRI
    const isJfif = marker === 0xe0 && ascii(bytes, at + 4, 5) === "JFIF\0";
    if (!isTableOrFrame && !isJfif) return false;
    if (at + 4 > bytes.length) return false;
    at += 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
  }
  return false;
}

/** WebP (RFC 9649): the simple layout, one VP8 or VP8L chunk filling the RIFF exactly. */
function isBareWebp(bytes: Uint8Array): boolean {
  if (bytes.length < 20 || u32le(bytes, 4) + 8 !== bytes.length) return false;
  const type = ascii(bytes, 12, 4);
  if (type !== "VP8 " && type !== "VP8L") return false;
  const size = u32le(bytes, 16);
  return 20 + size + (size % 2) === bytes.length;
}

/** True when a WebP file's image data is lossless (a VP8L chunk, alone or inside VP8X). */
export function isLosslessWebp(bytes: Uint8Array): boolean {
  let at = 12;
  while (at + 8 <= bytes.length) {
    const type = ascii(bytes, at, 4);
    if (type === "VP8L") return true;
    if (type === "VP8 ") return false;
    const size = u32le(bytes, at + 4);
    at += 8 + size + (size % 2);
  }
  return false;
}
