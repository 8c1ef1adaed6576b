"""Canonical layouts: where the trainer puts the objects a prompt asks for (docs/training.md).

A prompt such as "a circle and a square" is satisfied by countless scenes. Trained on uniformly
random scenes, a small MAR model must learn a near-uniform distribution over positions and sizes,
and its per-token diffusion heads then disagree on where the object is (a measured A/B: 0.13 on
single objects with random layouts against 0.58 with centred ones, same budget). So the training
targets of text-to-image put the objects at a few fixed slots with small jitter:

- one object: centred; two objects: side by side, the first named on the left;
- "A left of / right of B": side by side in that order; "A above / below B": stacked;
- counts: a row of two or three, a 2x2 grid of four;
- a named place ("a red circle in the top left"): that region's point.

Edits that add or move an object put it at a fixed point of the named region (the first of a few
candidates that does not collide with the rest of the scene). Every layout still satisfies its
prompt (the scorer's own check: tests/test_layouts.py). Colours that the prompt leaves open stay
random, and evaluation still uses random ShapesEval scenes and free-form checks: the layouts only
make the *training targets* learnable.
"""

from __future__ import annotations

import random
from typing import Sequence

from .scenes import fits
from .world import in_region

SIZE, SIZE_JITTER = 0.14, 0.01    # half-size of a canonical object (world: 0.09 .. 0.16)
ROW3_SIZE = 0.12                  # three in a row need smaller objects to keep their gaps
JITTER = 0.02                     # centre jitter, fraction of the side (about 1.3 px at 64 px)
ADD_SIZE = 0.13                   # half-size of an object an edit adds

# Generation slots per object, in prompt order: (cx, cy).
_ROW2 = ((0.3, 0.5), (0.7, 0.5))
_STACK2 = ((0.5, 0.3), (0.5, 0.7))
_SLOTS = {
    1: ((0.5, 0.5),),
    2: _ROW2,
    3: ((0.2, 0.5), (0.5, 0.5), (0.8, 0.5)),
    4: ((0.3, 0.3), (0.7, 0.3), (0.3, 0.7), (0.7, 0.7)),
}
_RELATION_SLOTS = {
    "left of": _ROW2,
    "right of": _ROW2[::-1],
    "above": _STACK2,
    "below": _STACK2[::-1],
}

# Region phrases of generation prompts -> the region words that must hold, and the slot.
REGION_PHRASES = {
    "on the left": (("left",), (0.18, 0.5)),
    "on the right": (("right",), (0.82, 0.5)),
    "at the top": (("top",), (0.5, 0.18)),
    "at the bottom": (("bottom",), (0.5, 0.82)),
    "in the center": (("center",), (0.5, 0.5)),
    "in the top left": (("top", "left"), (0.18, 0.18)),
    "in the top right": (("top", "right"), (0.82, 0.18)),
    "in the bottom left": (("bottom", "left"), (0.18, 0.82)),
    "in the bottom right": (("bottom", "right"), (0.82, 0.82)),
}

# Placement points of an added or moved object per region, tried in order.
REGION_POINTS = {
    "left": ((0.18, 0.5), (0.18, 0.2), (0.18, 0.8)),
    "right": ((0.82, 0.5), (0.82, 0.2), (0.82, 0.8)),
    "top": ((0.5, 0.18), (0.2, 0.18), (0.8, 0.18)),
    "bottom": ((0.5, 0.82), (0.2, 0.82), (0.8, 0.82)),
    "center": ((0.5, 0.5), (0.42, 0.42), (0.58, 0.58), (0.42, 0.58), (0.58, 0.42)),
}


def _r3(v: float) -> float:
    return round(v, 3)


def _jitter(rng: random.Random, v: float, j: float) -> float:
    return _r3(v + rng.uniform(-j, j))


def generation_slots(category: str, n: int, relation: str | None = None,
                     phrase: str | None = None) -> tuple[tuple[float, float], ...]:
    """The (cx, cy) slot of each of the n objects of a generation prompt, in prompt order."""
    if phrase is not None:
        return (REGION_PHRASES[phrase][1],)
    if category == "position":
        return _RELATION_SLOTS[relation]
    return _SLOTS[n]


def canonical_scene(rng: random.Random, specs: Sequence[tuple[str, str]],
                    slots: Sequence[tuple[float, float]], jitter: bool = True) -> list[dict]:
    """Objects (shape, color) at their slots, each jittered (unless jitter=False: exactly at the
    slot); half-size 0.14 +- 0.01 (0.12 in a row of three). The slots are far enough apart that
    the jitter never breaks a gap."""
    size = ROW3_SIZE if len(slots) == 3 else SIZE
    k = 1.0 if jitter else 0.0
    return [{"shape": sh, "color": co, "cx": _jitter(rng, x, k * JITTER), "cy": _jitter(rng, y, k * JITTER),
             "s": _jitter(rng, size, k * SIZE_JITTER)} for (sh, co), (x, y) in zip(specs, slots)]


def place_at_region(rng: random.Random, shape: str, color: str, others: Sequence[dict], region: str,
                    s: float | None = None, jitter: bool = True) -> dict | None:
    """An object at the first of the region's fixed points where it fits among `others` (jittered
    like the generation slots unless jitter=False); None when every point is taken."""
    k = 1.0 if jitter else 0.0
    size = s if s is not None else _jitter(rng, ADD_SIZE, k * SIZE_JITTER)
    for x, y in REGION_POINTS[region]:
        o = {"shape": shape, "color": color, "cx": _jitter(rng, x, k * JITTER), "cy": _jitter(rng, y, k * JITTER),
             "s": size}
        if fits(o, others) and in_region(o, region):
            return o
    return None
