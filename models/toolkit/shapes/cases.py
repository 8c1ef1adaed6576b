"""ShapesEval cases: generation of random cases (and the trainer's samplers drawn from the same
templates), case validation and the JSONL case format (docs/shapesworld.md sections 3 and 5)."""

from __future__ import annotations

import json
import random
from typing import Iterable, Sequence

from .layouts import REGION_PHRASES, canonical_scene, generation_slots, place_at_region
from .scenes import place, sample_scene
from .score import REPEAT_INSTRUCTION, score_generate
from .world import (COLORS, EDIT_FORMS, GEN_CATEGORIES, MAX_OBJECTS, REGIONS, RELATIONS, SHAPES, UNDERSTAND_FORMS,
                    _check_object, count_word, in_region, region_of)

LAYOUTS = ("random", "canonical", "fixed")  # fixed: the canonical slots without jitter
OPEN_COLORS = ("each", "shared")             # colours a prompt leaves open: per object, or one per scene


# ---------------------------------------------------------------------------------------------
# Case generation (docs/shapesworld.md sections 3 and 5). Each generator returns the case plus a concrete target
# scene that satisfies it, which is what the trainer renders as the image to learn.


def _gen_case(rng: random.Random, category: str, layout: str = "random",
              open_colors: str = "each") -> tuple[dict, list[dict]]:
    """(case, target scene). layout "random": any scene that satisfies the prompt (evaluation);
    "canonical": the objects at the fixed slots of layouts.py (the trainer's targets).
    open_colors (canonical layouts only): the colours a prompt leaves open are drawn for "each"
    object, or once per scene and "shared" by all of them (one choice for the sampler to agree
    on instead of one per object; docs/training.md)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    if open_colors not in OPEN_COLORS:
        raise ValueError(f"open_colors: expected one of {list(OPEN_COLORS)}, got {open_colors!r}")
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
    elif category == "region":
        phrase = rng.choice(list(REGION_PHRASES))
        prompt = f"a {co[0]} {sh[0]} {phrase}"
        expect = {"objects": [{"shape": sh[0], "color": co[0], "regions": list(REGION_PHRASES[phrase][0])}]}
        specs = [(sh[0], co[0])]
    else:
        raise ValueError(f"unknown generation category {category!r}")
    case = {"task": "generate", "category": category, "prompt": prompt, "expect": expect}
    if layout in ("canonical", "fixed"):
        slots = generation_slots(category, len(specs), rel if category == "position" else None,
                                 phrase if category == "region" else None)
        shared = rng.choice(COLORS) if open_colors == "shared" else None
        while True:  # the slots always satisfy the prompt; the check guards the tables
            scene = canonical_scene(rng, [(s, c or shared or rng.choice(COLORS)) for s, c in specs], slots,
                                    jitter=layout == "canonical")
            if score_generate(case, scene) == 1.0:
                return case, scene
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


def _edit_case(rng: random.Random, form: str, layout: str = "random",
               source=None) -> tuple[dict, list[dict]]:
    """(case, target scene). layout "canonical" puts an added or moved object at the region's
    fixed points (layouts.place_at_region) instead of anywhere in the region. source(rng), if
    given, draws the source scene (default: a random scene, as evaluation does)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {list(LAYOUTS)}, got {layout!r}")
    if form not in EDIT_FORMS:
        raise ValueError(f"unknown edit form {form!r}")
    while True:
        scene = source(rng) if source else sample_scene(rng)
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
            new = (place_at_region(rng, shape, color, scene, region, jitter=layout == "canonical")
                   if layout != "random" else place(rng, shape, color, scene, region))
            if new is None:
                continue
            instr = f"add a {color} {shape} on the {region}"
            target.append(new)
            expect.append({"shape": shape, "color": color, "region": region})
        else:  # move
            if len(_unique(scene, shape=o["shape"], color=o["color"])) != 1:
                continue
            region = rng.choice([r for r in REGIONS if not in_region(o, r)])
            rest = scene[:i] + scene[i + 1:]
            new = (place_at_region(rng, o["shape"], o["color"], rest, region, s=o["s"], jitter=layout == "canonical")
                   if layout != "random" else place(rng, o["shape"], o["color"], rest, region))
            if new is None:
                continue
            instr = f"move the {o['color']} {o['shape']} to the {region}"
            target[i] = new
            expect[i] = {"shape": o["shape"], "color": o["color"], "region": region}
        return {"task": "edit", "scene": scene, "instruction": instr, "expect": expect}, target


def _repeat_case(rng: random.Random) -> tuple[dict, list[dict]]:
    """"Repeat this image." on a random scene: the result must equal the source."""
    scene = sample_scene(rng)
    return {"task": "edit", "scene": scene, "instruction": REPEAT_INSTRUCTION,
            "expect": [dict(o) for o in scene]}, [dict(o) for o in scene]


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
    """Fresh random cases: n for each generation category (GEN_CATEGORIES), n understanding cases
    (cycling through the five forms) and n edit cases (cycling through the four forms)."""
    return [c for c, _ in generate_cases_with_targets(n_per_category, seed)]


# Training-time samplers: what the trainer imports. Each draws from the same templates as the
# evaluation cases, with a concrete target scene to render.


def sample_generation(rng: random.Random, category: str | None = None, layout: str = "random",
                      open_colors: str = "each") -> tuple[str, list[dict]]:
    """(prompt, target scene) for text-to-image training."""
    case, scene = _gen_case(rng, category or rng.choice(GEN_CATEGORIES), layout, open_colors)
    return case["prompt"], scene


def sample_understanding(rng: random.Random, form: str | None = None) -> tuple[list[dict], str, str]:
    """(scene, question, answer) for understanding training."""
    case = _und_case(rng, form or rng.choice(UNDERSTAND_FORMS))
    return case["scene"], case["question"], case["answer"]


def sample_edit(rng: random.Random, form: str | None = None, layout: str = "random",
                drawn_share: float = 0.0, open_colors: str = "each",
                min_objects: int = 1) -> tuple[list[dict], str, list[dict]]:
    """(source scene, instruction, target scene) for editing training. With probability
    drawn_share the source is what the model itself draws for a random prompt (a canonical
    layout): users mostly edit the model's own pictures, as in the README's conversation.
    Otherwise a random scene of min_objects to MAX_OBJECTS objects (evaluation: 1 to MAX_OBJECTS;
    a higher floor spends the edits where the model fails, scenes with several objects)."""
    if not 1 <= min_objects < MAX_OBJECTS:  # an "add" needs room for one more object
        raise ValueError(f"min_objects: expected 1..{MAX_OBJECTS - 1}, got {min_objects}")
    drawn = drawn_share > 0 and rng.random() < drawn_share
    source = (lambda r: _gen_case(r, r.choice(GEN_CATEGORIES), layout, open_colors)[1]) if drawn else \
        (lambda r: sample_scene(r, n=r.randint(min_objects, MAX_OBJECTS))) if min_objects > 1 else None
    case, target = _edit_case(rng, form or rng.choice(EDIT_FORMS), layout, source)
    return case["scene"], case["instruction"], target


ISOLATE_PREFIX = "keep only the "  # + the object's name: a training-only edit (sample_isolate)


def sample_isolate(rng: random.Random) -> tuple[list[dict], str, list[dict]]:
    """(source scene, instruction, target scene) of a training-only edit, "keep only the square":
    a random scene of 2 to MAX_OBJECTS objects and the one object named. The evaluation's edits
    change one object among several and must find it by its name alone; here the answer of every
    object's tokens depends on that (kept or erased), not of the few tokens a recolour changes.
    The object is named by its shape when no other has it (half the time), else by colour and shape."""
    while True:
        scene = sample_scene(rng, n=rng.randint(2, MAX_OBJECTS))
        o = rng.choice(scene)
        if len(_unique(scene, shape=o["shape"])) == 1 and rng.random() < 0.5:
            name = o["shape"]
        elif len(_unique(scene, shape=o["shape"], color=o["color"])) == 1:
            name = f"{o['color']} {o['shape']}"
        else:
            continue
        return scene, ISOLATE_PREFIX + name, [dict(o)]


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
            if "regions" in o:
                _need(isinstance(o["regions"], list) and o["regions"], f"{f}.regions",
                      f"expected a non-empty list of region words, got {o['regions']!r}")
                for j, r in enumerate(o["regions"]):
                    _check_choice(r, REGIONS, f"{f}.regions[{j}]")
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
