"""ShapesWorld and ShapesEval (docs: docs/shapesworld.md).

The reference tiny model is trained and judged on this synthetic world, so this package is both the
training-data source (samplers in cases.py) and the judge (detector + scorers). The TypeScript twin in
src/shapes/ must agree with it pixel for pixel and score for score; the cross-language pin lives in
test/fixtures/shapes-cases.jsonl and test/fixtures/shapes-scored.json (written by `fixtures`).

Scenes are lists of plain dicts {"shape","color","cx","cy","s"} (fractions of the canvas side) so
that they serialise to the JSONL case format unchanged.

Modules: world (vocabulary, renderer, region / relation words), detector, scenes (placement and
sampling), layouts (the trainer's canonical layouts), cases (case generation, the trainer's samplers, validation and JSONL), score, fixtures,
cli (`python -m toolkit.shapes`). Everything is re-exported here: use `from toolkit import shapes`.
"""

from __future__ import annotations

from .world import (BACKGROUND, COLORS, COUNT_WORDS, EDIT_FORMS, EDIT_TOLERANCE, GEN_CATEGORIES, GENEVAL_CATEGORIES,
                    MAX_OBJECTS,
                    MIN_GAP, PALETTE, REGIONS, RELATIONS, S_MAX, S_MIN, SHAPES, UNDERSTAND_FORMS, count_word,
                    in_region, region_of, regions_of, relation_holds, render, shape_mask)
from .detector import (FIT_OFFSETS, FIT_PAD, FIT_RADII, MAX_ASPECT, MAX_COLOR_DIST, MIN_COMPONENT, MIN_IOU,
                       classify, color_labels, detect, fit_candidates, fit_shape)
from .scenes import fits, place, sample_scene
from .layouts import REGION_PHRASES, REGION_POINTS, canonical_scene, generation_slots, place_at_region
from .score import REPEAT_INSTRUCTION, case_result, edit_form, score_case, score_kept, score_edit, score_generate, score_understand, summarize
from .cases import (LAYOUTS, _edit_case, _repeat_case, _gen_case, _und_case, dumps_cases, generate_cases, generate_cases_with_targets,
                    parse_cases, sample_edit, sample_isolate, sample_generation, sample_understanding, validate_case)
from .fixtures import build_fixtures
from .cli import main
