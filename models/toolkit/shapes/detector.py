"""The ShapesWorld detector: an RGB image -> the objects in it (docs/shapesworld.md section 4).

This is the judge of generated and edited images; src/shapes/ mirrors it in TypeScript.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .world import BACKGROUND, COLORS, PALETTE, SHAPES


# ---------------------------------------------------------------------------------------------
# Detector


_DETECT_COLORS = [BACKGROUND] + [PALETTE[c] for c in COLORS]
MIN_COMPONENT = 12  # pixels; smaller specks are noise, not objects
MAX_COLOR_DIST = 120  # farther than this from every palette colour: treated as background
MIN_IOU = 0.85  # best fitted-shape IoU below this: a blob, reported as shape "unknown"
# (rendered shapes fit at >= 0.93 from 64 px up: 3,000 random scenes measured)
MAX_ASPECT = 1.5  # bbox aspect beyond this: a bar, not one of our shapes


# Fitting grid, in pixels: every candidate is docs/shapesworld.md's own rasterisation of a shape whose centre
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
