"""ShapesWorld itself: the vocabulary (shapes, palette, regions, relations), the renderer and the
region / relation words (docs/shapesworld.md sections 1 and 2).

Scenes are lists of plain dicts {"shape","color","cx","cy","s"} (fractions of the canvas side) so
that they serialise to the JSONL case format unchanged.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import numpy as np


# ---------------------------------------------------------------------------------------------
# Vocabulary (docs/shapesworld.md sections 1 and 2)

SHAPES = ("circle", "square", "triangle")
PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 200, 30),
    "purple": (140, 60, 190),
    "orange": (245, 130, 30),
}
COLORS = tuple(PALETTE)
BACKGROUND = (255, 255, 255)
REGIONS = ("left", "right", "top", "bottom", "center")
RELATIONS = ("left of", "right of", "above", "below")
COUNT_WORDS = ("one", "two", "three", "four")
S_MIN, S_MAX = 0.09, 0.16
MIN_GAP = 0.02  # bounding boxes at least this far apart (fraction of the side)
MAX_OBJECTS = 4
# GenEval's six categories; generation "overall" is their mean, as GenEval reports it.
GENEVAL_CATEGORIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
# ShapesEval adds "region": one object at a named place ("a red circle in the top left").
GEN_CATEGORIES = GENEVAL_CATEGORIES + ("region",)
UNDERSTAND_FORMS = ("color", "count", "shape", "exists", "where")
EDIT_FORMS = ("recolor", "remove", "add", "move")
EDIT_TOLERANCE = 0.08  # centre distance allowed for an object the edit did not place

# ---------------------------------------------------------------------------------------------
# Rendering


def _check_object(o: dict, where: str = "object") -> None:
    if not isinstance(o, dict):
        raise ValueError(f"{where}: expected an object, got {type(o).__name__}")
    if o.get("shape") not in SHAPES:
        raise ValueError(f"{where}.shape: expected one of {list(SHAPES)}, got {o.get('shape')!r}")
    if o.get("color") not in PALETTE:
        raise ValueError(f"{where}.color: expected one of {list(COLORS)}, got {o.get('color')!r}")
    for k in ("cx", "cy", "s"):
        v = o.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}.{k}: expected a finite number, got {v!r}")


def _window_mask(shape: str, cx: float, cy: float, s: float, size: int,
                 x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """docs/shapesworld.md's rasterisation rule on pixels x0..x1-1, y0..y1-1 of an N = size canvas.

    The arithmetic order (px - cx*N, r = s*N, (dy + r) / 2, dx*dx + dy*dy <= r*r) is mirrored
    in src/shapes/world.ts so both languages make identical float decisions on boundary pixels.
    """
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5)[None, :] - cx * size
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5)[:, None] - cy * size
    r = s * size
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "triangle":
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    raise ValueError(f"unknown shape {shape!r}")


def shape_mask(shape: str, cx: float, cy: float, s: float, size: int) -> np.ndarray:
    """Boolean [size, size] mask of one shape."""
    return _window_mask(shape, cx, cy, s, size, 0, size, 0, size)


def render(scene: Sequence[dict], size: int) -> np.ndarray:
    """Render a scene to uint8 [size, size, 3] RGB on white, no anti-aliasing."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 8:
        raise ValueError(f"size: expected an integer >= 8, got {size!r}")
    size = int(size)
    img = np.full((size, size, 3), 255, dtype=np.uint8)
    for i, o in enumerate(scene):
        _check_object(o, f"scene[{i}]")
        # Only the bbox (plus a pixel) can be inside: test just that window (training renders
        # millions of scenes); the per-pixel rule itself is unchanged.
        px, py, r = o["cx"] * size, o["cy"] * size, o["s"] * size
        x0, x1 = max(0, math.floor(px - r) - 1), min(size, math.ceil(px + r) + 2)
        y0, y1 = max(0, math.floor(py - r) - 1), min(size, math.ceil(py + r) + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        m = _window_mask(o["shape"], o["cx"], o["cy"], o["s"], size, x0, x1, y0, y1)
        img[y0:y1, x0:x1][m] = PALETTE[o["color"]]
    return img


# ---------------------------------------------------------------------------------------------
# Words: regions and relations


def regions_of(o: dict) -> list[str]:
    """All region words that hold for an object's centre (a corner object is e.g. left and top)."""
    out = []
    cx, cy = o["cx"], o["cy"]
    if cx < 1 / 3:
        out.append("left")
    if cx > 2 / 3:
        out.append("right")
    if cy < 1 / 3:
        out.append("top")
    if cy > 2 / 3:
        out.append("bottom")
    if 1 / 3 <= cx <= 2 / 3 and 1 / 3 <= cy <= 2 / 3:
        out.append("center")
    return out


def region_of(o: dict) -> str | None:
    """The region word when exactly one holds (the only case a 'where' question is asked)."""
    r = regions_of(o)
    return r[0] if len(r) == 1 else None


def in_region(o: dict, region: str) -> bool:
    if region not in REGIONS:
        raise ValueError(f"unknown region {region!r}")
    return region in regions_of(o)


def relation_holds(a: dict, rel: str, b: dict) -> bool:
    """A {rel} B, using A's half-size as the margin, as docs/shapesworld.md words it."""
    if rel == "left of":
        return a["cx"] < b["cx"] - a["s"]
    if rel == "right of":
        return a["cx"] > b["cx"] + a["s"]
    if rel == "above":
        return a["cy"] < b["cy"] - a["s"]
    if rel == "below":
        return a["cy"] > b["cy"] + a["s"]
    raise ValueError(f"unknown relation {rel!r}")


def count_word(n: int) -> str:
    return COUNT_WORDS[n - 1]
