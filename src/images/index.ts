/**
 * The images module: upload validation and normalisation (upload.ts), RGB encode/decode for the
 * engine and previews (encode.ts), and MIME helpers (mime.ts). Other modules import from here.
 */
export { normalizeUpload, type NormalizedImage, type UploadLimits } from "./upload.js";
export {
  centerCrop,
  decodeToRgb,
  encodeRgb,
  padToSquare,
  toDataUrl,
  type DecodeOptions,
  type EncodeOptions,
  type RgbImage,
} from "./encode.js";
export {
  extToMime,
  formatToMime,
  IMAGE_MIMES,
  isImageMime,
  mimeToExt,
  mimeToFormat,
  type ImageFormat,
  type ImageMime,
} from "./mime.js";
export { describeBytes, sniffFormat } from "./sniff.js";
export { encodePngSync } from "./png.js";
