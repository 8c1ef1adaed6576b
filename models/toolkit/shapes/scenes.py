"""Scene sampling: random valid ShapesWorld scenes and object placement (inside the canvas, apart,
optionally inside a region)."""

from __future__ import annotations

import random
from typing import Iterable, Sequence

from .world import COLORS, MAX_OBJECTS, MIN_GAP, S_MAX, S_MIN, SHAPES, in_region


# ---------------------------------------------------------------------------------------------
# Scene sampling


def _r3(v: float) -> float:
    # Cases carry 3 decimals; rounding before the checks means the stored scene is the checked one.
    return round(v, 3)


def fits(o: dict, others: Iterable[dict]) -> bool:
    """Inside the canvas and at least MIN_GAP from every other bbox (separated on some axis)."""
    if o["cx"] - o["s"] < 0 or o["cx"] + o["s"] > 1 or o["cy"] - o["s"] < 0 or o["cy"] + o["s"] > 1:
        return False
    for b in others:
        gap_x = abs(o["cx"] - b["cx"]) - o["s"] - b["s"]
        gap_y = abs(o["cy"] - b["cy"]) - o["s"] - b["s"]
        if max(gap_x, gap_y) < MIN_GAP:
            return False
    return True


def _region_box(region: str | None, s: float) -> tuple[float, float, float, float]:
    """cx and cy ranges for a centre inside `region` (None: anywhere) with the shape inside."""
    lo, hi = s, 1 - s
    x0, x1, y0, y1 = lo, hi, lo, hi
    eps = 0.002  # keep clear of the 1/3 and 2/3 boundaries after rounding to 3 decimals
    if region == "left":
        x1 = min(x1, 1 / 3 - eps)
    elif region == "right":
        x0 = max(x0, 2 / 3 + eps)
    elif region == "top":
        y1 = min(y1, 1 / 3 - eps)
    elif region == "bottom":
        y0 = max(y0, 2 / 3 + eps)
    elif region == "center":
        x0, x1, y0, y1 = max(x0, 1 / 3 + eps), min(x1, 2 / 3 - eps), max(y0, 1 / 3 + eps), min(y1, 2 / 3 - eps)
    return x0, x1, y0, y1


def place(rng: random.Random, shape: str, color: str, others: Sequence[dict],
          region: str | None = None, tries: int = 200) -> dict | None:
    """A new object fitting among `others` (and inside `region` if given), or None."""
    for _ in range(tries):
        s = _r3(rng.uniform(S_MIN, S_MAX))
        x0, x1, y0, y1 = _region_box(region, s)
        if x0 > x1 or y0 > y1:
            continue
        o = {"shape": shape, "color": color, "cx": _r3(rng.uniform(x0, x1)),
             "cy": _r3(rng.uniform(y0, y1)), "s": s}
        if fits(o, others) and (region is None or in_region(o, region)):
            return o
    return None


def sample_scene(rng: random.Random, n: int | None = None,
                 specs: Sequence[tuple[str | None, str | None]] | None = None) -> list[dict]:
    """A random valid scene. `specs` fixes (shape, color) per object (None: random)."""
    if specs is None:
        k = n if n is not None else rng.randint(1, MAX_OBJECTS)
        specs = [(None, None)] * k
    if not 1 <= len(specs) <= MAX_OBJECTS:
        raise ValueError(f"a scene holds 1 to {MAX_OBJECTS} objects, asked for {len(specs)}")
    while True:  # restart when an unlucky layout leaves no room
        scene: list[dict] = []
        for shape, color in specs:
            o = place(rng, shape or rng.choice(SHAPES), color or rng.choice(COLORS), scene, tries=50)
            if o is None:
                break
            scene.append(o)
        else:
            return scene
