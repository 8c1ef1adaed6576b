// ShapesWorld (docs/shapesworld.md): vocabulary, rasterisation, region and relation
// words, and scene sampling. Mirrors models/toolkit/shapes.py; both must render identically
// (golden PNGs in test/fixtures/shapes-golden pin every pixel in each language).
import type { Rng } from "./rng.js";

export const SHAPES = ["circle", "square", "triangle"] as const;
export type Shape = (typeof SHAPES)[number];

export const PALETTE = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [240, 200, 30],
  purple: [140, 60, 190],
  orange: [245, 130, 30],
} as const satisfies Record<string, readonly [number, number, number]>;
export type Color = keyof typeof PALETTE;
// Fixed order (same as Python's dict order): the detector's tie-breaks and indices depend on it.
export const COLORS: readonly Color[] = ["red", "green", "blue", "yellow", "purple", "orange"];
export const BACKGROUND = [255, 255, 255] as const;

export const REGIONS = ["left", "right", "top", "bottom", "center"] as const;
export type Region = (typeof REGIONS)[number];
export const RELATIONS = ["left of", "right of", "above", "below"] as const;
export type Relation = (typeof RELATIONS)[number];
export const COUNT_WORDS = ["one", "two", "three", "four"] as const;

export const S_MIN = 0.09;
export const S_MAX = 0.16;
/** Bounding boxes at least this far apart, as a fraction of the side. */
export const MIN_GAP = 0.02;
export const MAX_OBJECTS = 4;

/** One object; centre and half-size are fractions of the canvas side. */
export interface SceneObject {
  shape: Shape;
  color: Color;
  cx: number;
  cy: number;
  s: number;
}
/** Anything with a position: scene objects and detected objects alike. */
export interface Placed {
  cx: number;
  cy: number;
  s: number;
}

export function isShape(v: unknown): v is Shape {
  return typeof v === "string" && (SHAPES as readonly string[]).includes(v);
}
export function isColor(v: unknown): v is Color {
  return typeof v === "string" && (COLORS as readonly string[]).includes(v);
}
export function isRegion(v: unknown): v is Region {
  return typeof v === "string" && (REGIONS as readonly string[]).includes(v);
}
export function isRelation(v: unknown): v is Relation {
  return typeof v === "string" && (RELATIONS as readonly string[]).includes(v);
}

/**
 * docs/shapesworld.md's rasterisation test for one pixel centre, in pixel units. dx, dy are the offsets
 * of the pixel centre from the shape centre and r the radius. The operation order matches the
 * Python toolkit exactly so both languages decide boundary pixels the same way.
 */
export function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case "square":
      return Math.abs(dx) <= r && Math.abs(dy) <= r;
    case "circle":
      return dx * dx + dy * dy <= r * r;
    case "triangle":
      return dy >= -r && dy <= r && Math.abs(dx) <= (dy + r) / 2;
  }
}

/** Render a scene to raw RGB, row-major [size*size*3], white background, no anti-aliasing. */
export function render(scene: readonly SceneObject[], size: number): Uint8Array {
  if (!Number.isInteger(size) || size < 8) throw new Error(`render: size must be an integer >= 8, got ${size}`);
  const img = new Uint8Array(size * size * 3).fill(255);
  scene.forEach((o, i) => {
    if (!isShape(o.shape)) throw new Error(`scene[${i}].shape: unknown shape ${JSON.stringify(o.shape)}`);
    if (!isColor(o.color)) throw new Error(`scene[${i}].color: unknown color ${JSON.stringify(o.color)}`);
    const [R, G, B] = PALETTE[o.color];
    const ox = o.cx * size;
    const oy = o.cy * size;
    const r = o.s * size;
    // Only the bbox (plus a pixel) can be inside; the test itself stays the exact per-pixel rule.
    const x0 = Math.max(0, Math.floor(ox - r) - 1);
    const x1 = Math.min(size - 1, Math.ceil(ox + r) + 1);
    const y0 = Math.max(0, Math.floor(oy - r) - 1);
    const y1 = Math.min(size - 1, Math.ceil(oy + r) + 1);
    for (let y = y0; y <= y1; y++) {
      const dy = y + 0.5 - oy;
      for (let x = x0; x <= x1; x++) {
        if (!inside(o.shape, x + 0.5 - ox, dy, r)) continue;
        const p = (y * size + x) * 3;
        img[p] = R;
        img[p + 1] = G;
        img[p + 2] = B;
      }
    }
  });
  return img;
}

/** All region words that hold (a corner object is e.g. both left and top). */
export function regionsOf(o: Placed): Region[] {
  const out: Region[] = [];
  if (o.cx < 1 / 3) out.push("left");
  if (o.cx > 2 / 3) out.push("right");
  if (o.cy < 1 / 3) out.push("top");
  if (o.cy > 2 / 3) out.push("bottom");
  if (o.cx >= 1 / 3 && o.cx <= 2 / 3 && o.cy >= 1 / 3 && o.cy <= 2 / 3) out.push("center");
  return out;
}

/** The region word when exactly one holds: only then is a "where" question well posed. */
export function regionOf(o: Placed): Region | null {
  const r = regionsOf(o);
  return r.length === 1 ? (r[0] as Region) : null;
}

export function inRegion(o: Placed, region: Region): boolean {
  return regionsOf(o).includes(region);
}

/** A {rel} B, with A's half-size as the margin, as docs/shapesworld.md words it. */
export function relationHolds(a: Placed, rel: Relation, b: Placed): boolean {
  switch (rel) {
    case "left of":
      return a.cx < b.cx - a.s;
    case "right of":
      return a.cx > b.cx + a.s;
    case "above":
      return a.cy < b.cy - a.s;
    case "below":
      return a.cy > b.cy + a.s;
  }
}

export function countWord(n: number): string {
  const w = COUNT_WORDS[n - 1];
  if (w === undefined) throw new Error(`countWord: ${n} is outside 1..${COUNT_WORDS.length}`);
  return w;
}

/** Inside the canvas and at least MIN_GAP from every other bbox (separated on some axis). */
export function fits(o: Placed, others: readonly Placed[]): boolean {
  if (o.cx - o.s < 0 || o.cx + o.s > 1 || o.cy - o.s < 0 || o.cy + o.s > 1) return false;
  return others.every((b) => {
    const gx = Math.abs(o.cx - b.cx) - o.s - b.s;
    const gy = Math.abs(o.cy - b.cy) - o.s - b.s;
    return Math.max(gx, gy) >= MIN_GAP;
  });
}

// Cases carry 3 decimals; rounding before the checks means the stored scene is the checked one.
const r3 = (v: number): number => Math.round(v * 1000) / 1000;

/** cx/cy ranges for a centre in `region` (null: anywhere) with the whole shape on the canvas. */
function regionBox(region: Region | null, s: number): [number, number, number, number] {
  let [x0, x1, y0, y1] = [s, 1 - s, s, 1 - s];
  const eps = 0.002; // stay clear of the 1/3 and 2/3 boundaries after rounding
  if (region === "left") x1 = Math.min(x1, 1 / 3 - eps);
  else if (region === "right") x0 = Math.max(x0, 2 / 3 + eps);
  else if (region === "top") y1 = Math.min(y1, 1 / 3 - eps);
  else if (region === "bottom") y0 = Math.max(y0, 2 / 3 + eps);
  else if (region === "center") {
    [x0, x1] = [Math.max(x0, 1 / 3 + eps), Math.min(x1, 2 / 3 - eps)];
    [y0, y1] = [Math.max(y0, 1 / 3 + eps), Math.min(y1, 2 / 3 - eps)];
  }
  return [x0, x1, y0, y1];
}

/** A new object fitting among `others` (inside `region` if given), or null after `tries`. */
export function place(
  rng: Rng, shape: Shape, color: Color, others: readonly Placed[], region: Region | null = null, tries = 200,
): SceneObject | null {
  for (let t = 0; t < tries; t++) {
    const s = r3(rng.uniform(S_MIN, S_MAX));
    const [x0, x1, y0, y1] = regionBox(region, s);
    if (x0 > x1 || y0 > y1) continue;
    const o: SceneObject = { shape, color, cx: r3(rng.uniform(x0, x1)), cy: r3(rng.uniform(y0, y1)), s };
    if (fits(o, others) && (region === null || inRegion(o, region))) return o;
  }
  return null;
}

export type Spec = [Shape | null, Color | null];

/** A random valid scene; `specs` fixes (shape, color) per object, null meaning random. */
export function sampleScene(rng: Rng, specs?: readonly Spec[]): SceneObject[] {
  const list: readonly Spec[] = specs ?? Array.from({ length: rng.int(1, MAX_OBJECTS) }, (): Spec => [null, null]);
  if (list.length < 1 || list.length > MAX_OBJECTS) {
    throw new Error(`sampleScene: a scene holds 1 to ${MAX_OBJECTS} objects, asked for ${list.length}`);
  }
  for (;;) {
    // Restart when an unlucky early layout leaves no room for a later object.
    const scene: SceneObject[] = [];
    for (const [shape, color] of list) {
      const o = place(rng, shape ?? rng.choice(SHAPES), color ?? rng.choice(COLORS), scene, null, 50);
      if (o === null) break;
      scene.push(o);
    }
    if (scene.length === list.length) return scene;
  }
}
