/**
 * Previews while MAR decodes: `linear` maps each revealed token latent to RGB with the manifest's
 * least-squares 16->3 map (docs/model.md §7, option 1: near free, every step); unrevealed tokens are grey.
 * `vae` decodes the partial latent (masked tokens 0) through the VAE decoder (option 2).
 */
import type { Manifest } from "./manifest.js";
import type { RgbTensor } from "./types.js";

const GREY = 128;

function toByte(x: number): number {
  // Same conversion as the final image: trunc(clamp(127.5 x + 128, 0, 255)).
  const v = 127.5 * x + 128;
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.trunc(v);
}

/** tokens [L, C] with `revealed` [L] flags -> RGB [h, w, 3], one pixel per token. */
export function linearPreview(manifest: Manifest, tokens: Float32Array, revealed: Uint8Array, grid: [number, number]): RgbTensor {
  const { weight, bias } = manifest.preview;
  const C = manifest.dims.latentChannels;
  const [h, w] = grid;
  const rgb = new Uint8Array(h * w * 3).fill(GREY);
  for (let p = 0; p < h * w; p++) {
    if (revealed[p] === 0) continue;
    for (let ch = 0; ch < 3; ch++) {
      let acc = bias[ch]!;
      for (let c = 0; c < C; c++) acc += tokens[p * C + c]! * weight[c]![ch]!;
      rgb[p * 3 + ch] = toByte(acc);
    }
  }
  return { rgb, width: w, height: h };
}

/** tokens [L, C] (raster) -> latent [1, C, h, w] divided by the VAE scale (docs/model.md §2.2 step 5). */
export function tokensToLatent(tokens: Float32Array, C: number, L: number, scale: number): Float32Array {
  const latent = new Float32Array(C * L);
  for (let p = 0; p < L; p++) for (let c = 0; c < C; c++) latent[c * L + p] = tokens[p * C + c]! / scale;
  return latent;
}

/** latent mean [1, C, h, w] -> tokens [L, C] times the VAE scale (docs/model.md §4.2). */
export function latentToTokens(latent: Float32Array, C: number, L: number, scale: number): Float32Array {
  const tokens = new Float32Array(C * L);
  for (let p = 0; p < L; p++) for (let c = 0; c < C; c++) tokens[p * C + c] = latent[c * L + p]! * scale;
  return tokens;
}

/** pixels [1, 3, H, W] in ~[-1, 1] -> RGB [H, W, 3] uint8. */
export function pixelsToRgb(pixels: Float32Array, width: number, height: number): RgbTensor {
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) rgb[i * 3 + ch] = toByte(pixels[ch * n + i]!);
  return { rgb, width, height };
}

/** RGB [H, W, 3] uint8 -> pixels [1, 3, H, W] in [-1, 1] (x / 255 * 2 - 1, docs/model.md §4.1). */
export function rgbToPixels(image: RgbTensor): Float32Array {
  const n = image.width * image.height;
  const pixels = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) pixels[ch * n + i] = (image.rgb[i * 3 + ch]! / 255) * 2 - 1;
  return pixels;
}
