// Test-only helpers: PNG decoding (sharp) and scene/detection comparison. The src/shapes code
// itself only sees raw RGB arrays.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import type { DetectedObject } from "../../src/shapes/detect.js";
import type { SceneObject } from "../../src/shapes/world.js";

export const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

export function readFixture(name: string): Buffer {
  return readFileSync(FIXTURES + name);
}

/** Decode a PNG to raw RGB [h*w*3], whatever its stored colour type. */
export async function decodePng(png: Buffer): Promise<{ rgb: Uint8Array; size: number }> {
  const { data, info } = await sharp(png).toColourspace("srgb").removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== info.height) throw new Error(`unexpected PNG layout ${JSON.stringify(info)}`);
  return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.length), size: info.width };
}

/** Detected objects equal the scene: one to one by shape and colour, centre and size close. */
export function matchesScene(detected: readonly DetectedObject[], scene: readonly SceneObject[], tol = 0.02): boolean {
  if (detected.length !== scene.length) return false;
  const left = [...detected];
  for (const o of scene) {
    const k = left.findIndex((d) => d.shape === o.shape && d.color === o.color && Math.abs(d.cx - o.cx) <= tol
      && Math.abs(d.cy - o.cy) <= tol && Math.abs(d.s - o.s) <= tol);
    if (k < 0) return false;
    left.splice(k, 1);
  }
  return true;
}

export const obj = (shape: SceneObject["shape"], color: SceneObject["color"], cx: number, cy: number, s = 0.1): SceneObject =>
  ({ shape, color, cx, cy, s });
