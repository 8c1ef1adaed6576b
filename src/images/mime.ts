/**
 * The three image types UniPic Studio stores, and the mapping between MIME types and file
 * extensions. Pure lookups: nothing here reads bytes (see sniff.ts for that).
 */

export const IMAGE_MIMES = ["image/png", "image/jpeg", "image/webp"] as const;
export type ImageMime = (typeof IMAGE_MIMES)[number];

/** sharp's name for each format, which is also the short name the API uses. */
export type ImageFormat = "png" | "jpeg" | "webp";

const EXT_BY_MIME: Record<ImageMime, string> = {
  "image/png": "png",
  "image/jpeg": "jpg",
  "image/webp": "webp",
};

const MIME_BY_EXT: Record<string, ImageMime> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  jpe: "image/jpeg",
  webp: "image/webp",
};

export function formatToMime(format: ImageFormat): ImageMime {
  return `image/${format}`;
}

export function mimeToFormat(mime: ImageMime): ImageFormat {
  return mime.slice("image/".length) as ImageFormat;
}

export function isImageMime(value: string): value is ImageMime {
  return (IMAGE_MIMES as readonly string[]).includes(value);
}

/** The conventional extension, without a dot: "png", "jpg" or "webp". */
export function mimeToExt(mime: ImageMime): string {
  return EXT_BY_MIME[mime];
}

/**
 * The MIME type for an extension or file name ("JPG", ".jpeg", "cat.webp"), or undefined when it is
 * not one we store. Only a hint for naming and downloads: uploads are typed by their bytes.
 */
export function extToMime(ext: string): ImageMime | undefined {
  const dot = ext.lastIndexOf(".");
  const bare = (dot >= 0 ? ext.slice(dot + 1) : ext).toLowerCase();
  return Object.hasOwn(MIME_BY_EXT, bare) ? MIME_BY_EXT[bare] : undefined;
}
