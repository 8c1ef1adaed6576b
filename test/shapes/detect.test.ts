import { describe, expect, it } from "vitest";
import { detect } from "../../src/shapes/detect.js";
import { Rng } from "../../src/shapes/rng.js";
import { PALETTE, SHAPES, render, sampleScene } from "../../src/shapes/world.js";
import { matchesScene, obj } from "./helpers.js";

function paint(img: Uint8Array, size: number, x0: number, y0: number, x1: number, y1: number, rgb: readonly number[]): void {
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) img.set(rgb, (y * size + x) * 3);
}

describe("detect", () => {
  it.each([[64, 500], [128, 150]])("is exact on %i px renders (%i random scenes)", (size, n) => {
    const rng = new Rng(size);
    const bad = [];
    for (let k = 0; k < n; k++) {
      const scene = sampleScene(rng);
      if (!matchesScene(detect(render(scene, size), size), scene)) bad.push(scene);
    }
    expect(bad, `${bad.length}/${n} misdetected`).toEqual([]);
  });

  it("finds the smallest shapes (s = 0.09, 11.5 px at 64 px) at every subpixel offset", () => {
    for (const shape of SHAPES) {
      for (let k = 0; k < 64; k++) {
        const scene = [obj(shape, "orange", 0.5 + (k % 8) / 8 / 64, 0.5 + Math.floor(k / 8) / 8 / 64, 0.09)];
        expect(matchesScene(detect(render(scene, 64), 64), scene), JSON.stringify(scene)).toBe(true);
      }
    }
  });

  it("is mostly right at 32 px, where exactness is impossible", () => {
    // A 0.02 gap is under a pixel at 32 px (same-colour objects can touch) and an s = 0.09
    // circle can rasterise as a full 5x5 square (docs/shapesworld.md section 1: 64 px is the minimum).
    const rng = new Rng(32);
    let ok = 0;
    for (let k = 0; k < 300; k++) {
      const scene = sampleScene(rng);
      if (matchesScene(detect(render(scene, 32), 32), scene, 0.04)) ok++;
    }
    expect(ok / 300).toBeGreaterThanOrEqual(0.97);
  });

  it("ignores specks and off-palette pixels and reports blobs as unknown", () => {
    const img = render([obj("circle", "blue", 0.3, 0.3, 0.12)], 64);
    paint(img, 64, 60, 60, 61, 61, PALETTE.red); // 1 px speck
    paint(img, 64, 5, 50, 8, 53, PALETTE.green); // 9 px, under the 12 px minimum
    paint(img, 64, 40, 0, 63, 3, [0, 0, 0]); // black is far from every palette colour
    expect(detect(img, 64).map((d) => [d.shape, d.color])).toEqual([["circle", "blue"]]);
    const bar = new Uint8Array(64 * 64 * 3).fill(255);
    paint(bar, 64, 5, 10, 40, 14, PALETTE.red);
    expect(detect(bar, 64).map((d) => d.shape)).toEqual(["unknown"]);
    const ell = new Uint8Array(64 * 64 * 3).fill(255);
    paint(ell, 64, 20, 20, 40, 40, PALETTE.green);
    paint(ell, 64, 30, 20, 40, 30, [255, 255, 255]); // an L: 0.75 of its box fits no shape well
    expect(detect(ell, 64).map((d) => d.shape)).toEqual(["unknown"]);
    const tinted = render([obj("triangle", "purple", 0.6, 0.6)], 64).map((v) => Math.max(0, v - 20));
    expect(detect(tinted, 64).map((d) => [d.shape, d.color])).toEqual([["triangle", "purple"]]);
  });

  it("reports fitted scene parameters, so a triangle's centre is not its bbox centre", () => {
    const [d] = detect(render([obj("triangle", "red", 0.4, 0.55, 0.13)], 128), 128);
    expect(d?.shape).toBe("triangle");
    expect(Math.abs((d?.cy ?? 0) - 0.55)).toBeLessThan(0.01);
    expect(Math.abs((d?.s ?? 0) - 0.13)).toBeLessThan(0.01);
  });

  it("rejects an image of the wrong size", () => {
    expect(() => detect(new Uint8Array(10), 64)).toThrow(/expected 64x64 RGB/);
  });
});
