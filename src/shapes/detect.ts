// The ShapesEval detector: it judges the model, so on rendered scenes it must be exact (tests
// check 100% at 64 and 128 px). Mirrors detect() in models/toolkit/shapes.py step for step,
// including tie-breaks and float operation order; test/fixtures/shapes-scored.json pins both.
import { BACKGROUND, COLORS, PALETTE, SHAPES, type Color, type Shape } from "./world.js";

/** Components smaller than this are specks, not objects. */
export const MIN_COMPONENT = 12;
/** Pixels farther than this (RGB distance) from white and every palette colour are background. */
export const MAX_COLOR_DIST = 120;
/** A best fitted-shape IoU below this is a blob, reported as "unknown" (renders fit >= 0.93). */
export const MIN_IOU = 0.85;
/** A bbox more elongated than this is a bar, not one of our shapes. */
export const MAX_ASPECT = 1.5;

// Fitting grid in pixels. Every candidate is the rasterisation rule (docs/shapesworld.md 1) of a shape whose
// centre and radius are within a fraction of a pixel of what the bbox suggests, so a rendered
// shape matches a candidate (nearly) exactly at any size, and a shape of another kind cannot.
// Fill-ratio thresholds, by contrast, confuse small circles (fill ~0.9) with squares.
export const FIT_OFFSETS = [-0.5, -0.25, 0, 0.25, 0.5] as const;
export const FIT_RADII = [-0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75] as const;
/** Window margin around the bbox so that oversized candidates are penalised. */
export const FIT_PAD = 2;

export type DetectedShape = Shape | "unknown";
export interface DetectedObject {
  shape: DetectedShape;
  color: Color;
  /** Fitted centre and half-size as fractions of the side (like a scene object). */
  cx: number;
  cy: number;
  s: number;
  /** Inclusive pixel bbox [x0, y0, x1, y1]. */
  bbox: [number, number, number, number];
  area: number;
  /** IoU of the component with the best fitted shape. */
  iou: number;
}

const DETECT_COLORS: readonly (readonly number[])[] = [BACKGROUND, ...COLORS.map((c) => PALETTE[c])];

/** Per pixel: -1 for background, else the index into COLORS of the nearest palette colour. */
export function colorLabels(rgb: Uint8Array, size: number): Int8Array {
  if (rgb.length !== size * size * 3) {
    throw new Error(`detect: expected ${size}x${size} RGB (${size * size * 3} bytes), got ${rgb.length} bytes`);
  }
  const out = new Int8Array(size * size);
  const cache = new Map<number, number>(); // few distinct colours per image
  const maxD = MAX_COLOR_DIST * MAX_COLOR_DIST;
  for (let i = 0; i < size * size; i++) {
    const r = rgb[3 * i] as number;
    const g = rgb[3 * i + 1] as number;
    const b = rgb[3 * i + 2] as number;
    const key = (r << 16) | (g << 8) | b;
    let lab = cache.get(key);
    if (lab === undefined) {
      let best = 0;
      let bestD = Infinity;
      DETECT_COLORS.forEach((p, k) => {
        const d = (r - (p[0] as number)) ** 2 + (g - (p[1] as number)) ** 2 + (b - (p[2] as number)) ** 2;
        if (d < bestD) [best, bestD] = [k, d]; // strict: ties keep the earlier colour, like argmin
      });
      lab = best === 0 || bestD > maxD ? -1 : best - 1;
      cache.set(key, lab);
    }
    out[i] = lab;
  }
  return out;
}

interface Fit {
  iou: number;
  cx: number;
  cy: number;
  r: number;
}

/**
 * Best IoU of a component (mask over the bbox window padded by FIT_PAD) against one shape's
 * candidates, in the fixed order radius, then cy offset, then cx offset; ties keep the first.
 */
export function fitShape(mask: Uint8Array, bbox: readonly number[], shape: Shape): Fit {
  const [x0, y0, x1, y1] = bbox as [number, number, number, number];
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const ww = w + 2 * FIT_PAD;
  const hh = h + 2 * FIT_PAD;
  const wx0 = x0 - FIT_PAD;
  const wy0 = y0 - FIT_PAD;
  let area = 0;
  for (const v of mask) area += v;
  const bx = (x0 + x1 + 1) / 2;
  const by = (y0 + y1 + 1) / 2;
  // A triangle's widest row is its base and its apex rows may vanish (thinner than a pixel),
  // so its radius comes from the width and its centre from the bottom edge.
  const r0 = shape === "triangle" ? w / 2 : Math.max(w, h) / 2;
  let best: Fit = { iou: -1, cx: 0, cy: 0, r: 0 };
  for (const dr of FIT_RADII) {
    const r = r0 + dr;
    const cy0 = shape === "triangle" ? y1 + 1 - r : by;
    for (const oy of FIT_OFFSETS) {
      for (const ox of FIT_OFFSETS) {
        const cx = bx + ox;
        const cy = cy0 + oy;
        // Hot loop (about 200k pixel tests per object): one specialised loop per shape, each
        // the same expression as inside() in world.ts, which V8 would not inline here.
        let inter = 0;
        let cand = 0;
        for (let j = 0; j < hh; j++) {
          const dy = j + wy0 + 0.5 - cy;
          const row = j * ww;
          if (shape === "square") {
            if (!(Math.abs(dy) <= r)) continue;
            for (let i = 0; i < ww; i++) {
              if (Math.abs(i + wx0 + 0.5 - cx) <= r) {
                cand++;
                inter += mask[row + i] as number;
              }
            }
          } else if (shape === "circle") {
            const dy2 = dy * dy;
            for (let i = 0; i < ww; i++) {
              const dx = i + wx0 + 0.5 - cx;
              if (dx * dx + dy2 <= r * r) {
                cand++;
                inter += mask[row + i] as number;
              }
            }
          } else {
            if (!(dy >= -r && dy <= r)) continue;
            const half = (dy + r) / 2;
            for (let i = 0; i < ww; i++) {
              if (Math.abs(i + wx0 + 0.5 - cx) <= half) {
                cand++;
                inter += mask[row + i] as number;
              }
            }
          }
        }
        const iou = inter / (area + cand - inter);
        if (iou > best.iou) best = { iou, cx, cy, r };
      }
    }
  }
  return best;
}

/**
 * Find objects in a raw RGB image [size*size*3]: nearest-palette labels, 4-connected components
 * of at least MIN_COMPONENT pixels, each classified by the best fitted shape. Objects are listed
 * in raster order of their first pixel.
 */
export function detect(rgb: Uint8Array, size: number): DetectedObject[] {
  const lab = colorLabels(rgb, size);
  const seen = new Uint8Array(size * size);
  const out: DetectedObject[] = [];
  const stack: number[] = [];
  for (let start = 0; start < size * size; start++) {
    const c = lab[start] as number;
    if (c < 0 || seen[start]) continue;
    seen[start] = 1;
    stack.push(start);
    const pix: number[] = [];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      pix.push(i);
      const x = i % size;
      const y = (i - x) / size;
      const nb: [number, boolean][] = [[i - 1, x > 0], [i + 1, x < size - 1], [i - size, y > 0], [i + size, y < size - 1]];
      for (const [j, ok] of nb) {
        if (ok && !seen[j] && lab[j] === c) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    if (pix.length < MIN_COMPONENT) continue;
    let [x0, y0, x1, y1] = [size, size, -1, -1];
    for (const i of pix) {
      const x = i % size;
      const y = (i - x) / size;
      x0 = Math.min(x0, x);
      x1 = Math.max(x1, x);
      y0 = Math.min(y0, y);
      y1 = Math.max(y1, y);
    }
    const bbox: [number, number, number, number] = [x0, y0, x1, y1];
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const ww = w + 2 * FIT_PAD;
    const mask = new Uint8Array(ww * (h + 2 * FIT_PAD));
    for (const i of pix) {
      const x = i % size;
      mask[((i - x) / size - y0 + FIT_PAD) * ww + (x - x0 + FIT_PAD)] = 1;
    }
    let shape: DetectedShape = "unknown";
    let fit: Fit = { iou: -1, cx: 0, cy: 0, r: 0 };
    for (const name of SHAPES) {
      const f = fitShape(mask, bbox, name);
      if (f.iou > fit.iou) [shape, fit] = [name, f]; // strict: ties keep the earlier shape
    }
    if (fit.iou < MIN_IOU || Math.max(w, h) > MAX_ASPECT * Math.min(w, h)) {
      shape = "unknown";
      fit = { iou: fit.iou, cx: (x0 + x1 + 1) / 2, cy: (y0 + y1 + 1) / 2, r: Math.max(w, h) / 2 };
    }
    out.push({
      shape, color: COLORS[c] as Color, cx: fit.cx / size, cy: fit.cy / size, s: fit.r / size,
      bbox, area: pix.length, iou: fit.iou,
    });
  }
  return out;
}
