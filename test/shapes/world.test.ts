import { describe, expect, it } from "vitest";
import { Rng } from "../../src/shapes/rng.js";
import {
  PALETTE, S_MAX, S_MIN, fits, inside, regionOf, regionsOf, relationHolds, render, sampleScene, type SceneObject,
} from "../../src/shapes/world.js";
import { decodePng, obj, readFixture } from "./helpers.js";

interface GoldenEntry {
  file: string;
  size: number;
  scene: SceneObject[];
}

describe("render", () => {
  const index = JSON.parse(readFixture("shapes-golden/index.json").toString()) as GoldenEntry[];

  it("has the 12 golden scenes at 32, 64 and 128 px", () => {
    expect(index).toHaveLength(36);
    expect(new Set(index.map((e) => e.size))).toEqual(new Set([32, 64, 128]));
  });

  it.each([32, 64, 128])("reproduces every pixel of the golden renders at %i px", async (size) => {
    for (const e of index.filter((g) => g.size === size)) {
      const want = await decodePng(readFixture(`shapes-golden/${e.file}`));
      expect(want.size).toBe(size);
      const got = render(e.scene, size);
      let diff = 0;
      for (let i = 0; i < got.length; i++) if (got[i] !== want.rgb[i]) diff++;
      expect(diff, e.file).toBe(0);
    }
  });

  it("follows the rasterisation rule on hand-checked pixels", () => {
    // 8x8, centre (4,4), r = 2: the square covers pixel centres 2.5..5.5, i.e. x, y in 2..5.
    const img = render([obj("square", "red", 0.5, 0.5, 0.25)], 8);
    let painted = 0;
    for (let p = 0; p < 64; p++) if (img[3 * p] !== 255) painted++;
    expect(painted).toBe(16);
    expect([...img.slice((2 * 8 + 2) * 3, (2 * 8 + 2) * 3 + 3)]).toEqual([...PALETTE.red]);
    // Triangle row dy = -1.5 admits |dx| <= 0.25 (no pixel centre); row dy = 1.5 admits |dx| <= 1.75.
    expect([-0.5, 0.5].some((dx) => inside("triangle", dx, -1.5, 2))).toBe(false);
    expect([-1.5, -0.5, 0.5, 1.5].every((dx) => inside("triangle", dx, 1.5, 2))).toBe(true);
    expect(inside("triangle", 2.5, 1.5, 2)).toBe(false);
    expect(inside("circle", 1.5, 1.5, 2)).toBe(false); // 4.5 > 4
  });

  it("rejects bad input with the offending field", () => {
    expect(() => render([{ ...obj("circle", "red", 0.5, 0.5), color: "pink" } as unknown as SceneObject], 64))
      .toThrow(/scene\[0\]\.color/);
    expect(() => render([], 4)).toThrow(/size/);
  });
});

describe("words", () => {
  it("names regions, including corners and the centre", () => {
    expect(regionsOf(obj("circle", "red", 0.2, 0.5))).toEqual(["left"]);
    expect(regionsOf(obj("circle", "red", 0.8, 0.9))).toEqual(["right", "bottom"]);
    expect(regionsOf(obj("circle", "red", 0.5, 0.1))).toEqual(["top"]);
    expect(regionsOf(obj("circle", "red", 0.5, 0.5))).toEqual(["center"]);
    expect(regionOf(obj("circle", "red", 0.1, 0.1))).toBeNull();
  });

  it("uses A's half-size as the margin of a relation", () => {
    const a = obj("circle", "red", 0.2, 0.5, 0.1);
    const b = obj("square", "blue", 0.35, 0.5, 0.1);
    expect(relationHolds(a, "left of", b)).toBe(true);
    expect(relationHolds(b, "right of", a)).toBe(true);
    expect(relationHolds({ ...a, cx: 0.26 }, "left of", b)).toBe(false);
    const up = obj("circle", "red", 0.5, 0.2);
    const down = obj("square", "blue", 0.5, 0.6);
    expect([relationHolds(up, "above", down), relationHolds(down, "below", up), relationHolds(up, "below", down)])
      .toEqual([true, true, false]);
  });
});

describe("sampleScene", () => {
  it("keeps 1-4 objects inside the canvas, apart, sized in range", () => {
    const rng = new Rng(5);
    for (let k = 0; k < 300; k++) {
      const scene = sampleScene(rng);
      expect(scene.length).toBeGreaterThanOrEqual(1);
      expect(scene.length).toBeLessThanOrEqual(4);
      scene.forEach((o, i) => {
        expect(o.s).toBeGreaterThanOrEqual(S_MIN);
        expect(o.s).toBeLessThanOrEqual(S_MAX);
        expect(fits(o, scene.filter((_, j) => j !== i))).toBe(true);
      });
    }
  });

  it("is reproducible from a seed and differs across seeds", () => {
    expect(sampleScene(new Rng(7))).toEqual(sampleScene(new Rng(7)));
    expect(sampleScene(new Rng(7))).not.toEqual(sampleScene(new Rng(8)));
    expect(() => new Rng(1.5)).toThrow(/integer/);
  });
});
