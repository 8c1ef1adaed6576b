"""ShapesWorld and ShapesEval (docs: shared/docs/shapes-world.md).

The reference tiny model is trained and judged on this synthetic world, so this module is both the
training-data source (samplers below) and the judge (detector + scorers). The TypeScript twin in
src/shapes/ must agree with it pixel for pixel and score for score; the cross-language pin lives in
test/fixtures/shapes-cases.jsonl and test/fixtures/shapes-scored.json (written by `fixtures`).

Scenes are lists of plain dicts {"shape","color","cx","cy","s"} (fractions of the canvas side) so
that they serialise to the JSONL case format unchanged.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import numbers
import random
import sys
from typing import Iterable, Sequence

import numpy as np

# ---------------------------------------------------------------------------------------------
# Vocabulary (spec section 1 and 2)

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
GEN_CATEGORIES = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
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
    """The spec's rasterisation rule on pixels x0..x1-1, y0..y1-1 of an N = size canvas.

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
    """A {rel} B, using A's half-size as the margin, as the spec words it."""
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


# ---------------------------------------------------------------------------------------------
# Detector


_DETECT_COLORS = [BACKGROUND] + [PALETTE[c] for c in COLORS]
MIN_COMPONENT = 12  # pixels; smaller specks are noise, not objects
MAX_COLOR_DIST = 120  # farther than this from every palette colour: treated as background
MIN_IOU = 0.85  # best fitted-shape IoU below this: a blob, reported as shape "unknown"
# (rendered shapes fit at >= 0.93 from 64 px up: 3,000 random scenes measured)
MAX_ASPECT = 1.5  # bbox aspect beyond this: a bar, not one of our shapes


# Fitting grid, in pixels: every candidate is the spec's own rasterisation of a shape whose centre
# and radius sit within a fraction of a pixel of what the bounding box suggests. A rendered shape
# then matches one candidate (nearly) exactly, whatever its size, while a shape of another kind
# cannot: fill-ratio thresholds, by contrast, confuse small circles (fill ~0.9) with squares.
FIT_OFFSETS = (-0.5, -0.25, 0.0, 0.25, 0.5)
FIT_RADII = (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)
FIT_PAD = 2  # window margin around the bbox so that oversized candidates are penalised


def fit_candidates(shape: str, bbox: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate (cx, cy, r) in pixels, in the fixed order r, then cy offset, then cx offset."""
    x0, y0, x1, y1 = bbox
    w, h = x1 - x0 + 1, y1 - y0 + 1
    bx, by = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2
    # A triangle's widest row is its base, and its apex rows may be thinner than a pixel and
    # vanish, so its radius comes from the width and its centre from the bottom edge.
    r0 = w / 2 if shape == "triangle" else max(w, h) / 2
    cxs, cys, rs = [], [], []
    for dr in FIT_RADII:
        r = r0 + dr
        cy0 = (y1 + 1) - r if shape == "triangle" else by
        for oy in FIT_OFFSETS:
            for ox in FIT_OFFSETS:
                cxs.append(bx + ox)
                cys.append(cy0 + oy)
                rs.append(r)
    return np.array(cxs), np.array(cys), np.array(rs)


def fit_shape(mask: np.ndarray, bbox: Sequence[int], shape: str) -> tuple[float, float, float, float]:
    """Best IoU of `mask` (the component, bbox window padded by FIT_PAD) against one shape's
    candidates: (iou, cx, cy, r) in pixels. Ties keep the first candidate (same in TS)."""
    x0, y0 = bbox[0] - FIT_PAD, bbox[1] - FIT_PAD
    hh, ww = mask.shape
    cxs, cys, rs = fit_candidates(shape, bbox)
    X = (np.arange(ww, dtype=np.float64) + x0 + 0.5)[None, None, :]
    Y = (np.arange(hh, dtype=np.float64) + y0 + 0.5)[None, :, None]
    dx = X - cxs[:, None, None]
    dy = Y - cys[:, None, None]
    r = rs[:, None, None]
    if shape == "square":
        cand = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    elif shape == "circle":
        cand = dx * dx + dy * dy <= r * r
    else:
        cand = (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    inter = (cand & mask[None]).sum((1, 2))
    union = int(mask.sum()) + cand.sum((1, 2)) - inter
    iou = inter / union
    k = int(np.argmax(iou))
    return float(iou[k]), float(cxs[k]), float(cys[k]), float(rs[k])


def classify(mask: np.ndarray, bbox: Sequence[int]) -> tuple[str, float, float, float, float]:
    """(shape, iou, cx, cy, r) of the best-fitting shape; "unknown" (with the bbox centre and
    half-size) for a blob no shape fits or a bar too elongated to be one of ours."""
    best = ("unknown", -1.0, 0.0, 0.0, 0.0)
    for name in SHAPES:
        iou, cx, cy, r = fit_shape(mask, bbox, name)
        if iou > best[1]:  # strict: ties keep the earlier name in SHAPES (same in TS)
            best = (name, iou, cx, cy, r)
    x0, y0, x1, y1 = bbox
    w, h = x1 - x0 + 1, y1 - y0 + 1
    if best[1] < MIN_IOU or max(w, h) > MAX_ASPECT * min(w, h):
        best = ("unknown", best[1], (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2, max(w, h) / 2)
    return best


def color_labels(img: np.ndarray) -> np.ndarray:
    """Per pixel: -1 background, else the index into COLORS of the nearest palette colour.

    Nearest is by squared RGB distance over white + the palette, ties to the earlier entry;
    pixels farther than MAX_COLOR_DIST from all of them (e.g. black) count as background.
    Distances are computed once per distinct colour, which is what keeps this cheap.
    """
    flat = img.reshape(-1, 3).astype(np.int32)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse = np.unique(keys, return_inverse=True)
    rgb = np.stack([uniq >> 16, (uniq >> 8) & 255, uniq & 255], axis=1)
    pal = np.array(_DETECT_COLORS, dtype=np.int32)
    d = ((rgb[:, None, :] - pal[None]) ** 2).sum(-1)
    idx = d.argmin(-1)
    lab = np.where((idx == 0) | (d.min(-1) > MAX_COLOR_DIST * MAX_COLOR_DIST), -1, idx - 1)
    return lab[inverse.ravel()].reshape(img.shape[:2])


def detect(img: np.ndarray) -> list[dict]:
    """Find objects in an RGB image: [{shape,color,cx,cy,s,bbox:[x0,y0,x1,y1],area,iou}].

    Objects are listed in raster order of their first pixel. cx, cy, s are the fitted shape's
    centre and half-size as fractions of the side, the same parameters a scene uses, so edits
    can be compared with expected scenes (a triangle's bbox centre would sit too low).
    """
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"detect: expected a square RGB image [N,N,3], got shape {img.shape}")
    if img.dtype != np.uint8:  # a float image in [0,1] or [-1,1] would silently read as black
        raise ValueError(f"detect: expected uint8 pixels 0..255, got {img.dtype} (convert model output first)")
    n = img.shape[0]
    labels = color_labels(img).ravel()
    lab = labels.tolist()
    seen = [False] * (n * n)
    out = []
    for start in np.flatnonzero(labels >= 0).tolist():  # raster order, foreground only
        c = lab[start]
        if seen[start]:
            continue
        seen[start] = True
        stack, pix = [start], []
        while stack:  # 4-neighbour flood fill within one colour
            i = stack.pop()
            pix.append(i)
            y, x = divmod(i, n)
            for j, ok in ((i - 1, x > 0), (i + 1, x < n - 1), (i - n, y > 0), (i + n, y < n - 1)):
                if ok and not seen[j] and lab[j] == c:
                    seen[j] = True
                    stack.append(j)
        if len(pix) < MIN_COMPONENT:
            continue
        ys = [i // n for i in pix]
        xs = [i % n for i in pix]
        bbox = [min(xs), min(ys), max(xs), max(ys)]
        mask = np.zeros((bbox[3] - bbox[1] + 1 + 2 * FIT_PAD, bbox[2] - bbox[0] + 1 + 2 * FIT_PAD), dtype=bool)
        mask[np.array(ys) - bbox[1] + FIT_PAD, np.array(xs) - bbox[0] + FIT_PAD] = True
        shape, iou, cx, cy, r = classify(mask, bbox)
        out.append({"shape": shape, "color": COLORS[c], "cx": cx / n, "cy": cy / n, "s": r / n,
                    "bbox": bbox, "area": len(pix), "iou": iou})
    return out


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


# ---------------------------------------------------------------------------------------------
# Case generation (spec section 3 and 5). Each generator returns the case plus a concrete target
# scene that satisfies it, which is what the trainer renders as the image to learn.


def _gen_case(rng: random.Random, category: str) -> tuple[dict, list[dict]]:
    sh = list(SHAPES)
    rng.shuffle(sh)
    co = list(COLORS)
    rng.shuffle(co)
    if category == "single_object":
        prompt, expect, specs = f"a {sh[0]}", {"objects": [{"shape": sh[0]}]}, [(sh[0], None)]
    elif category == "two_object":
        prompt = f"a {sh[0]} and a {sh[1]}"
        expect = {"objects": [{"shape": sh[0]}, {"shape": sh[1]}]}
        specs = [(sh[0], None), (sh[1], None)]
    elif category == "counting":
        n = rng.randint(2, MAX_OBJECTS)  # "one circles" is not English; GenEval counts from two too
        prompt, expect = f"{count_word(n)} {sh[0]}s", {"count": {"shape": sh[0], "n": n}}
        specs = [(sh[0], None)] * n
    elif category == "colors":
        prompt = f"a {co[0]} {sh[0]}"
        expect = {"objects": [{"shape": sh[0], "color": co[0]}]}
        specs = [(sh[0], co[0])]
    elif category == "position":
        rel = rng.choice(RELATIONS)
        prompt = f"a {sh[0]} {rel} a {sh[1]}"
        expect = {"objects": [{"shape": sh[0]}, {"shape": sh[1]}],
                  "relations": [{"a": 0, "rel": rel, "b": 1}]}
        specs = [(sh[0], None), (sh[1], None)]
    elif category == "color_attr":
        prompt = f"a {co[0]} {sh[0]} and a {co[1]} {sh[1]}"
        expect = {"objects": [{"shape": sh[0], "color": co[0]}, {"shape": sh[1], "color": co[1]}]}
        specs = [(sh[0], co[0]), (sh[1], co[1])]
    else:
        raise ValueError(f"unknown generation category {category!r}")
    case = {"task": "generate", "category": category, "prompt": prompt, "expect": expect}
    while True:
        scene = sample_scene(rng, specs=specs)
        if score_generate(case, scene) == 1.0:
            return case, scene


def _unique(scene: Sequence[dict], **attrs) -> list[int]:
    return [i for i, o in enumerate(scene) if all(o[k] == v for k, v in attrs.items())]


def _und_case(rng: random.Random, form: str) -> dict:
    while True:
        scene = sample_scene(rng)
        o = rng.choice(scene)
        q = a = None
        if form == "color" and len(_unique(scene, shape=o["shape"])) == 1:
            q, a = f"what color is the {o['shape']}?", o["color"]
        elif form == "count":
            q = f"how many {o['shape']}s are there?"
            a = count_word(len(_unique(scene, shape=o["shape"])))
        elif form == "shape" and len(_unique(scene, color=o["color"])) == 1:
            q, a = f"what shape is the {o['color']} object?", o["shape"]
        elif form == "exists":
            if rng.random() < 0.5:
                q, a = f"is there a {o['color']} {o['shape']}?", "yes"
            else:
                absent = [(c, s) for c in COLORS for s in SHAPES if not _unique(scene, color=c, shape=s)]
                c, s = rng.choice(absent)
                q, a = f"is there a {c} {s}?", "no"
        elif form == "where" and len(_unique(scene, color=o["color"], shape=o["shape"])) == 1:
            if region_of(o) is not None:
                q, a = f"where is the {o['color']} {o['shape']}?", region_of(o)
        elif form not in UNDERSTAND_FORMS:
            raise ValueError(f"unknown understanding form {form!r}")
        if q is not None:
            return {"task": "understand", "scene": scene, "question": q, "answer": a}


def _edit_case(rng: random.Random, form: str) -> tuple[dict, list[dict]]:
    if form not in EDIT_FORMS:
        raise ValueError(f"unknown edit form {form!r}")
    while True:
        scene = sample_scene(rng)
        i = rng.randrange(len(scene))
        o = scene[i]
        target = [dict(x) for x in scene]
        expect = [dict(x) for x in scene]
        if form == "recolor":
            if len(_unique(scene, shape=o["shape"])) != 1:
                continue
            color = rng.choice([c for c in COLORS if c != o["color"]])
            instr = f"make the {o['shape']} {color}"
            target[i]["color"] = expect[i]["color"] = color
        elif form == "remove":
            if len(_unique(scene, shape=o["shape"], color=o["color"])) != 1:
                continue
            instr = f"remove the {o['color']} {o['shape']}"
            del target[i], expect[i]
        elif form == "add":
            if len(scene) >= MAX_OBJECTS:
                continue
            shape, color, region = rng.choice(SHAPES), rng.choice(COLORS), rng.choice(REGIONS)
            new = place(rng, shape, color, scene, region)
            if new is None:
                continue
            instr = f"add a {color} {shape} on the {region}"
            target.append(new)
            expect.append({"shape": shape, "color": color, "region": region})
        else:  # move
            if len(_unique(scene, shape=o["shape"], color=o["color"])) != 1:
                continue
            region = rng.choice([r for r in REGIONS if not in_region(o, r)])
            new = place(rng, o["shape"], o["color"], scene[:i] + scene[i + 1:], region)
            if new is None:
                continue
            instr = f"move the {o['color']} {o['shape']} to the {region}"
            target[i] = new
            expect[i] = {"shape": o["shape"], "color": o["color"], "region": region}
        return {"task": "edit", "scene": scene, "instruction": instr, "expect": expect}, target


def generate_cases_with_targets(n_per_category: int, seed: int = 0) -> list[tuple[dict, list[dict] | None]]:
    """Like generate_cases, with the concrete scene that satisfies each generate/edit case
    (None for understanding): what a perfect model would draw."""
    if n_per_category < 1:
        raise ValueError("n_per_category must be >= 1")
    rng = random.Random(seed)
    out: list[tuple[dict, list[dict] | None]] = []
    for cat in GEN_CATEGORIES:
        out += [_gen_case(rng, cat) for _ in range(n_per_category)]
    out += [(_und_case(rng, UNDERSTAND_FORMS[k % 5]), None) for k in range(n_per_category)]
    out += [_edit_case(rng, EDIT_FORMS[k % 4]) for k in range(n_per_category)]
    return out


def generate_cases(n_per_category: int, seed: int = 0) -> list[dict]:
    """Fresh random cases: n for each of the six generation categories, n understanding cases
    (cycling through the five forms) and n edit cases (cycling through the four forms)."""
    return [c for c, _ in generate_cases_with_targets(n_per_category, seed)]


# Training-time samplers: what the trainer imports. Each draws from the same templates as the
# evaluation cases, with a concrete target scene to render.


def sample_generation(rng: random.Random, category: str | None = None) -> tuple[str, list[dict]]:
    """(prompt, target scene) for text-to-image training."""
    case, scene = _gen_case(rng, category or rng.choice(GEN_CATEGORIES))
    return case["prompt"], scene


def sample_understanding(rng: random.Random, form: str | None = None) -> tuple[list[dict], str, str]:
    """(scene, question, answer) for understanding training."""
    case = _und_case(rng, form or rng.choice(UNDERSTAND_FORMS))
    return case["scene"], case["question"], case["answer"]


def sample_edit(rng: random.Random, form: str | None = None) -> tuple[list[dict], str, list[dict]]:
    """(source scene, instruction, target scene) for editing training."""
    case, target = _edit_case(rng, form or rng.choice(EDIT_FORMS))
    return case["scene"], case["instruction"], target


# ---------------------------------------------------------------------------------------------
# Scoring (spec section 3 and 5). `detected` is detect()'s output, or any scene-like dicts.


def _assign(expected: Sequence[dict], detected: Sequence[dict], ok, used=None, acc=None):
    """Backtracking one-to-one assignment of expected objects to detected ones.

    `ok(exp_index, det)` filters candidates; returns the first full assignment whose final check
    passes, via ok(None, assignment). Scenes hold at most a handful of objects, so this is cheap.
    """
    used = used if used is not None else set()
    acc = acc if acc is not None else []
    k = len(acc)
    if k == len(expected):
        return list(acc) if ok(None, acc) else None
    for j, d in enumerate(detected):
        if j in used or not ok(k, d):
            continue
        used.add(j)
        acc.append(j)
        found = _assign(expected, detected, ok, used, acc)
        acc.pop()
        used.discard(j)
        if found is not None:
            return found
    return None


def _attrs_match(e: dict, d: dict) -> bool:
    return d.get("shape") == e["shape"] and ("color" not in e or d.get("color") == e["color"])


def score_generate(case: dict, detected: Sequence[dict]) -> float:
    """1.0 when the detected scene satisfies the generate case, else 0.0."""
    expect = case["expect"]
    if "count" in expect:
        c = expect["count"]
        n = sum(1 for d in detected if _attrs_match(c, d))
        if n != c["n"]:
            return 0.0
    objs = expect.get("objects", [])
    rels = expect.get("relations", [])

    def check(k, d_or_assignment):
        if k is not None:  # candidate filter for expected object k
            return _attrs_match(objs[k], d_or_assignment)
        a = d_or_assignment  # full assignment: expected index -> detected index
        return all(relation_holds(detected[a[r["a"]]], r["rel"], detected[a[r["b"]]]) for r in rels)

    return 1.0 if _assign(objs, detected, check) is not None else 0.0


def _normalize(answer: str) -> str:
    a = answer.strip().lower()
    if a.endswith("."):
        a = a[:-1]
    return a.strip()


def score_understand(case: dict, answer: str) -> float:
    """Exact match after lower-casing and trimming a final period; a digit counts as a number."""
    if not isinstance(answer, str):
        raise ValueError(f"answer: expected a string, got {type(answer).__name__}")
    got, want = _normalize(answer), _normalize(case["answer"])
    if got.isascii() and got.isdigit() and 1 <= int(got) <= len(COUNT_WORDS):
        got = COUNT_WORDS[int(got) - 1]
    return 1.0 if got == want else 0.0


def score_edit(case: dict, detected: Sequence[dict]) -> float:
    """1.0 when the detected result equals the expected scene (spec section 3), else 0.0."""
    expect = case["expect"]
    if len(detected) != len(expect):
        return 0.0

    def ok(k, d):
        if k is None:
            return True
        e = expect[k]
        if not _attrs_match(e, d) or d.get("color") != e["color"]:
            return False
        if "region" in e:
            return in_region(d, e["region"])
        # Squared distances, not math.hypot: hypot's last-bit rounding differs between Python and
        # JavaScript, and a boundary case must score the same in both.
        dx, dy = d["cx"] - e["cx"], d["cy"] - e["cy"]
        return dx * dx + dy * dy <= EDIT_TOLERANCE * EDIT_TOLERANCE

    return 1.0 if _assign(expect, detected, ok) is not None else 0.0


def score_case(case: dict, output) -> float:
    """Dispatch: output is the detected objects (generate, edit) or the answer text (understand)."""
    task = case["task"]
    if task == "generate":
        return score_generate(case, output)
    if task == "understand":
        return score_understand(case, output)
    if task == "edit":
        return score_edit(case, output)
    raise ValueError(f"unknown task {task!r}")


def _mean(xs: Sequence[float]) -> float | None:
    # A plain left-to-right sum: Python 3.12's sum() compensates rounding, JavaScript's reduce
    # does not, and summaries from both languages must agree to the last bit.
    if not xs:
        return None
    total = 0.0
    for x in xs:
        total += x
    return total / len(xs)


def case_result(case: dict, scores: Sequence[float]) -> dict:
    """One summarize() entry for a case judged on several samples (GenEval: 4 seeds)."""
    if not scores:
        raise ValueError("case_result: no scores")
    r = {"task": case["task"], "score": _mean([float(x) for x in scores])}
    if case["task"] == "generate":
        r["category"] = case["category"]
    return r


def summarize(results: Sequence[dict]) -> dict:
    """The `unipic eval --json` object from per-case results {task, category?, score}.

    A category score is the mean of its cases; `overall` the mean of the categories present;
    a task (or generation category) absent from the results is null.
    """
    mean = _mean

    gen = [r for r in results if r["task"] == "generate"]
    generation = None
    if gen:
        generation = {c: mean([r["score"] for r in gen if r["category"] == c]) for c in GEN_CATEGORIES}
        generation["overall"] = mean([v for v in generation.values() if v is not None])
    return {
        "generation": generation,
        "understanding": mean([r["score"] for r in results if r["task"] == "understand"]),
        "editing": mean([r["score"] for r in results if r["task"] == "edit"]),
        "cases": len(results),
    }


# ---------------------------------------------------------------------------------------------
# Case validation and JSONL (anyone can bring their own cases, so errors name line and field)


def _need(cond: bool, field: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{field}: {msg}")


def _check_choice(v, options, field: str) -> None:
    _need(v in options, field, f"expected one of {list(options)}, got {v!r}")


def _check_str(v, field: str) -> None:
    _need(isinstance(v, str) and v != "", field, f"expected a non-empty string, got {v!r}")


def _check_scene(scene, field: str, allow_region: bool = False, allow_empty: bool = False) -> None:
    _need(isinstance(scene, list), field, f"expected a list of objects, got {type(scene).__name__}")
    _need(allow_empty or len(scene) >= 1, field, "expected at least one object")
    for i, o in enumerate(scene):
        f = f"{field}[{i}]"
        if allow_region and isinstance(o, dict) and "region" in o:
            _check_choice(o.get("shape"), SHAPES, f"{f}.shape")
            _check_choice(o.get("color"), COLORS, f"{f}.color")
            _check_choice(o.get("region"), REGIONS, f"{f}.region")
        else:
            _check_object(o, f)


def validate_case(case, where: str = "case") -> dict:
    """Raise ValueError naming the offending field unless `case` is a well-formed case."""
    _need(isinstance(case, dict), where, f"expected a JSON object, got {type(case).__name__}")
    task = case.get("task")
    _check_choice(task, ("generate", "understand", "edit"), f"{where}.task")
    if task == "generate":
        _check_choice(case.get("category"), GEN_CATEGORIES, f"{where}.category")
        _check_str(case.get("prompt"), f"{where}.prompt")
        e = case.get("expect")
        _need(isinstance(e, dict), f"{where}.expect", "expected an object")
        _need("objects" in e or "count" in e, f"{where}.expect", "needs 'objects' or 'count'")
        if "count" in e:
            c = e["count"]
            _need(isinstance(c, dict), f"{where}.expect.count", "expected an object")
            _check_choice(c.get("shape"), SHAPES, f"{where}.expect.count.shape")
            if "color" in c:
                _check_choice(c["color"], COLORS, f"{where}.expect.count.color")
            n = c.get("n")
            _need(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_OBJECTS,
                  f"{where}.expect.count.n", f"expected an integer 0..{MAX_OBJECTS}, got {n!r}")
        objs = e.get("objects", [])
        _need(isinstance(objs, list), f"{where}.expect.objects", "expected a list")
        for i, o in enumerate(objs):
            f = f"{where}.expect.objects[{i}]"
            _need(isinstance(o, dict), f, "expected an object")
            _check_choice(o.get("shape"), SHAPES, f"{f}.shape")
            if "color" in o:
                _check_choice(o["color"], COLORS, f"{f}.color")
        rels = e.get("relations", [])
        _need(isinstance(rels, list), f"{where}.expect.relations", "expected a list")
        for i, r in enumerate(rels):
            f = f"{where}.expect.relations[{i}]"
            _need(isinstance(r, dict), f, "expected an object")
            _check_choice(r.get("rel"), RELATIONS, f"{f}.rel")
            for k in ("a", "b"):
                v = r.get(k)
                _need(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < len(objs),
                      f"{f}.{k}", f"expected an index into expect.objects (0..{len(objs) - 1}), got {v!r}")
    elif task == "understand":
        _check_scene(case.get("scene"), f"{where}.scene")
        _check_str(case.get("question"), f"{where}.question")
        _check_str(case.get("answer"), f"{where}.answer")
    else:
        _check_scene(case.get("scene"), f"{where}.scene")
        _check_str(case.get("instruction"), f"{where}.instruction")
        _check_scene(case.get("expect"), f"{where}.expect", allow_region=True, allow_empty=True)
    return case


def parse_cases(text: str, source: str = "cases") -> list[dict]:
    """Parse JSONL cases (blank lines skipped); errors read like 'cases.jsonl:3: expect.count.n: ...'."""
    cases = []
    for ln, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}:{ln}: invalid JSON: {e.msg} (column {e.colno})") from None
        try:
            cases.append(validate_case(obj, "case"))
        except ValueError as e:
            raise ValueError(f"{source}:{ln}: {e}") from None
    return cases


def dumps_cases(cases: Iterable[dict]) -> str:
    return "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in cases)


# ---------------------------------------------------------------------------------------------
# Cross-language fixtures (test/fixtures): the TS detector and scorer must reproduce these.


def _png_b64(img: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img, "RGB").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _perturb(rng: random.Random, img: np.ndarray) -> np.ndarray:
    """Off-model noise the detector must shrug off or report: specks, off-palette tints, a bar."""
    img = img.copy()
    n = img.shape[0]
    for _ in range(6):  # isolated specks of palette colour: below MIN_COMPONENT
        img[rng.randrange(n), rng.randrange(n)] = PALETTE[rng.choice(COLORS)]
    tint = np.clip(img.astype(np.int32) + rng.randint(-25, 25), 0, 255).astype(np.uint8)
    return tint


def build_fixtures(seed: int = 0) -> tuple[list[dict], dict]:
    """(cases, scored): 40 cases over every category and form, and the detector output plus
    every generate/edit case's score on: each case's target render, each edit's unedited source,
    and perturbed renders. A few images are 128 px so both sizes are pinned."""
    pairs = generate_cases_with_targets(5, seed)
    cases = [c for c, _ in pairs]
    rng = random.Random(seed + 1)
    items = []

    def item(name: str, img: np.ndarray, scene: list[dict] | None = None) -> None:
        det = detect(img)
        scores = [[k, score_case(c, det)] for k, c in enumerate(cases) if c["task"] != "understand"]
        it = {"name": name, "size": int(img.shape[0]), "png": _png_b64(img), "detected": det, "scores": scores}
        if scene is not None:  # unperturbed: the TS renderer must reproduce the PNG from it
            it["scene"] = scene
        items.append(it)

    for k, (c, target) in enumerate(pairs):
        size = 128 if k % 7 == 0 else 64
        if target is not None:
            item(f"case{k}-target", render(target, size), target)
        if c["task"] == "edit":
            item(f"case{k}-source", render(c["scene"], size), c["scene"])
    for k in range(6):
        img = render(sample_scene(rng), 64)
        if k == 0:
            img[10:14, 5:40] = PALETTE["red"]  # a bar: too elongated, reported as "unknown"
        if k == 1:
            img[40:60, 40:60] = PALETTE["blue"]  # a blob with a notch: poor fit, "unknown"
            img[40:50, 50:60] = 255
        item(f"perturbed{k}", _perturb(rng, img))
    answers = []
    for k, c in enumerate(cases):
        if c["task"] != "understand":
            continue
        a = c["answer"]
        variants = [a, a.upper() + ".", f" {a}. ", "purple" if a != "purple" else "red", a + ".."]
        if a in COUNT_WORDS:
            variants += [str(COUNT_WORDS.index(a) + 1), "7"]
        answers += [[k, v, score_understand(c, v)] for v in variants]
    # Uneven per-case scores (thirds, sevenths) so that float summation order is pinned too.
    results = [case_result(c, [rng.choice([0.0, 1.0]) for _ in range(rng.choice([3, 4, 7]))])
               for c in cases]
    summaries = [
        {"results": results, "summary": summarize(results)},
        {"results": results[-10:], "summary": summarize(results[-10:])},
        {"results": results[:7], "summary": summarize(results[:7])},
        {"results": [], "summary": summarize([])},
    ]
    return cases, {"seed": seed, "items": items, "answers": answers, "summaries": summaries}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m toolkit.shapes", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cases", help="write fresh random ShapesEval cases as JSONL to stdout")
    c.add_argument("--n-per-category", type=int, default=50)
    c.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("fixtures", help="write the cross-language fixtures into a directory")
    f.add_argument("--out", required=True)
    v = sub.add_parser("validate", help="validate a JSONL case file")
    v.add_argument("path")
    args = ap.parse_args(argv)
    if args.cmd == "cases":
        sys.stdout.write(dumps_cases(generate_cases(args.n_per_category, args.seed)))
    elif args.cmd == "fixtures":
        import os

        cases, scored = build_fixtures(0)
        with open(os.path.join(args.out, "shapes-cases.jsonl"), "w") as fh:
            fh.write(dumps_cases(cases))
        with open(os.path.join(args.out, "shapes-scored.json"), "w") as fh:
            json.dump(scored, fh, separators=(",", ":"))
            fh.write("\n")
    else:
        with open(args.path) as fh:
            try:
                cs = parse_cases(fh.read(), args.path)
            except ValueError as e:
                print(e, file=sys.stderr)
                return 1
        print(f"{len(cs)} valid cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())
