"""ONNX export of the tiny random model: parity with torch in onnxruntime-node, manifest, tokenizer."""

import json
import os
import subprocess
from types import SimpleNamespace

import numpy as np
import onnx
import pytest

from toolkit.config import TINY
from toolkit.evaluate import _cfg_from_manifest
from toolkit.export import FORMAT, OPSET, build_manifest, role_specs
from toolkit.ortnode import HERE
from toolkit.tokenizer import ByteLevelBPE, T2I_POSITIVE, chat

from toolkit.ortnode import node_available
from toolkit.parity import parity

needs_node = pytest.mark.skipif(not node_available(), reason="node + onnxruntime-node not installed")

SHAPES = [dict(seed=5, B=3, V=7, n=4, P=6, T=2), dict(seed=6, B=1, V=0, n=2, P=0, T=4)]


def test_files_and_opset(tiny_export):
    out, man = tiny_export
    for role, g in man["graphs"].items():
        m = onnx.load(os.path.join(out, g["file"]))
        onnx.checker.check_model(m)
        assert any(o.domain in ("", "ai.onnx") and o.version == OPSET for o in m.opset_import)
        assert [i.name for i in m.graph.input] == [x["name"] for x in g["inputs"]], role
        assert [o.name for o in m.graph.output] == [x["name"] for x in g["outputs"]], role
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    assert total < 40e6


@needs_node
@pytest.mark.parametrize("role", list(role_specs(__import__("toolkit.config").config.TINY)))
def test_parity(tiny, tiny_export, role):
    out, _ = tiny_export
    for i, kw in enumerate(SHAPES):
        d = parity(tiny, out, role, f"tiny/{role}", **kw)
        assert d < 1e-4, (role, kw, d)


def test_manifest(tiny, tiny_export, tok):
    out, man = tiny_export
    assert man["format"] == FORMAT
    d = man["dims"]
    assert (d["latent_channels"], d["buffer_tokens"], d["mar_width"], d["llm_hidden"]) == (16, 4, 128, 256)
    assert (d["llm_layers"], d["llm_kv_heads"], d["llm_head_dim"], d["vocab_size"]) == (4, 2, 64, 768)
    assert man["vae"]["scale"] == 0.2325
    assert man["diffusion"]["T"] == 1000 and man["diffusion"]["max_beta"] == 0.2
    assert set(man["sampling_defaults"]) == {"steps", "cfg", "cfgSchedule", "temperature", "diffusionSteps"}
    assert "edit_sampling_defaults" not in man  # TINY has no edit overrides: optional field left out
    (res,) = man["resolutions"]
    assert res["size"] == 64 and res["grid"] == [8, 8] and res["image_prompt_tokens"] == 68
    pt = res["pos_tables"]
    raw = np.fromfile(os.path.join(out, pt["file"]), dtype="<f4")
    enc_pos, dec_pos, diff_pos = tiny.mar.pos_tables(8, 8)
    for name, ref in (("enc_pos", enc_pos), ("dec_pos", dec_pos), ("diff_pos", diff_pos)):
        e = pt[name]
        n = int(np.prod(e["shape"]))
        got = raw[e["offset"] // 4: e["offset"] // 4 + n].reshape(e["shape"])
        assert np.array_equal(got, ref.detach().numpy())
    pv = man["preview"]
    assert np.array(pv["weight"]).shape == (16, 3) and len(pv["bias"]) == 3
    t = man["tokenizer"]
    assert t["image_token_id"] == tok.added["<image>"] and t["eos_id"] == tok.added["<|im_end|>"]
    assert t["pad_id"] == tok.added["<|endoftext|>"]
    assert man["prompts"]["user_prefix"] == "<|im_start|>user\n"
    assert man["prompts"]["assistant_prefix"] == "<|im_end|>\n<|im_start|>assistant\n"
    assert set(man["graphs"]) == {"vae_encoder", "vae_decoder", "mar_encoder", "mar_fill", "mar_decoder",
                                  "llm", "diffusion_head"}
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f) == man


def test_edit_sampling_defaults_round_trip(tok):
    # written only when the config has edit overrides; evaluate reads them back into the config
    preview = {"kind": "linear", "weight": [[0.0] * 3] * 16, "bias": [0.0] * 3}
    model = SimpleNamespace(cfg=TINY.replace(edit_sampling={"cfg": 1.0, "cfgSchedule": "linear"}))
    man = json.loads(json.dumps(build_manifest(model, tok, [64], "t", preview, "test")))
    assert man["edit_sampling_defaults"] == {"cfg": 1.0, "cfgSchedule": "linear"}
    assert man["sampling_defaults"] == TINY.sampling
    cfg = _cfg_from_manifest(TINY, man)
    assert cfg.edit_sampling == {"cfg": 1.0, "cfgSchedule": "linear"} and cfg.sampling == TINY.sampling
    plain = build_manifest(SimpleNamespace(cfg=TINY), tok, [64], "t", preview, "test")
    assert "edit_sampling_defaults" not in plain
    assert _cfg_from_manifest(TINY.replace(edit_sampling={"cfg": 2.0}), plain).edit_sampling == {}


VOCAB_TEXTS = [
    chat(T2I_POSITIVE.format(prompt="a red circle left of a blue square.")),
    chat("Generate an image."),
    chat("<image><image><image>\nRepeat this image."),
    chat("<image>\nWhat color is the triangle?"), "how many circles are there?", "Is there a purple square?",
    "where is the orange triangle?", "move the green circle to the top", "add a yellow square on the right",
    "remove the red triangle", "make the square blue", "three triangles", "a circle above a square",
    "a square below a triangle", "a triangle right of a circle", "yes", "no", "four", "2", "center", "bottom",
]


def test_vocabulary_single_tokens(tok):
    for w in ("circle", "squares", "triangles", "purple", "orange", "center", "above", "below", "four",
              "yes", "no", "where", "remove", "move", "Generate", "Repeat", "image", "object", "shape"):
        assert len(tok.encode(" " + w)) == 1 and len(tok.encode(w)) == 1, w
    for p in ("?", ".", ":"):
        assert len(tok.encode(p)) == 1
    for s in VOCAB_TEXTS:
        assert tok.decode(tok.encode(s)) == s


def _js_encode(tokenizer_dir: str, texts: list[str], tmp_path) -> list[dict]:
    """[{ids, decoded}] per text from @huggingface/tokenizers, the engine's library (tok_check.mjs)."""
    if not os.path.isdir(os.path.join(HERE, "..", "..", "node_modules", "@huggingface", "tokenizers")):
        pytest.skip("@huggingface/tokenizers not installed")
    p = tmp_path / "s.json"
    p.write_text(json.dumps(texts))
    r = subprocess.run(["node", os.path.join(HERE, "tok_check.mjs"), tokenizer_dir, str(p)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@needs_node
def test_tokenizer_matches_huggingface_js(tiny_export, tok, tmp_path):
    out, _ = tiny_export
    texts = VOCAB_TEXTS + ["unknown wörds & 123 !!\n\n tabs\t", "Hello, World"]
    res = _js_encode(out, texts, tmp_path)
    py = ByteLevelBPE.from_file(os.path.join(out, "tokenizer.json"))
    for s, js in zip(texts, res):
        assert js["ids"] == py.encode(s), s
        assert js["decoded"] == s


COMMITTED = os.path.join(os.path.dirname(__file__), "..", "..", "unipic-tiny")

ARTICLES = [("is there an orange circle?", "is there a orange circle?"), ("An orange square", "A orange square"),
            ("add an orange triangle in the top left", "add a orange triangle in the top left")]


@needs_node
def test_shipped_tokenizer_reads_an_as_the_trained_article(tok, tmp_path):
    """Users write "an orange", the tiny model was trained on "a orange": the shipped tokenizer.json
    gives both the same ids, in the engine's library and here; words that merely end in "an" and the
    training tokenizer (which --article-an relies on) and the templates' "an image" are left alone."""
    texts = [t for pair in ARTICLES for t in pair] + ["can orange", "an red circle", T2I_POSITIVE]
    js = {s: res["ids"] for s, res in zip(texts, _js_encode(COMMITTED, texts, tmp_path))}
    py = ByteLevelBPE.from_file(os.path.join(COMMITTED, "tokenizer.json"))
    for s in texts:
        assert js[s] == py.encode(s), s
    for users, trained in ARTICLES:
        assert js[users] == js[trained], users
        assert tok.encode(users) != tok.encode(trained), users  # training still sees "an"
    assert js["can orange"] == tok.encode("can orange")
    assert js["an red circle"] == tok.encode("an red circle")  # only before "orange"
    assert js[T2I_POSITIVE] == tok.encode(T2I_POSITIVE)  # "Generate an image" is trained as written


@needs_node
def _approx_equal(a, b, rel=1e-5):
    """Equal JSON values, floats within `rel` (relative, or absolute near zero)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_approx_equal(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_approx_equal(x, y, rel) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    return a == b


def test_committed_tiny_matches_its_source(tiny, tmp_path):
    """models/unipic-tiny must be exactly what its manifest's `source` says: the seeded random
    export, or the export of the committed checkpoint it names (the engine fixtures assume it)."""
    import re

    from toolkit.config import TINY
    from toolkit.evaluate import load_torch
    from toolkit.export import export
    from toolkit.tokenizer import build_tiny_tokenizer

    if not os.path.exists(os.path.join(COMMITTED, "manifest.json")):
        pytest.skip("models/unipic-tiny not exported")
    man = json.load(open(os.path.join(COMMITTED, "manifest.json")))
    ckpt = re.search(r"\bmodels/(checkpoints/\S+\.pt)\b", man["source"])
    if man["source"] == "random weights, seed 0":
        model = tiny
    elif ckpt:
        model = load_torch(None, os.path.join(COMMITTED, "..", ckpt.group(1)), "tiny")
        # trained weights' sampling defaults are chosen by measurement at export time (toolkit.train
        # --sampling / --edit-sampling), not derived from the weights: export with the committed ones
        model.cfg = model.cfg.replace(sampling=man["sampling_defaults"],
                                      edit_sampling=man.get("edit_sampling_defaults", {}))
    else:
        pytest.fail(f"models/unipic-tiny's source names neither a seed nor a committed checkpoint: {man['source']}")
    fresh = export(model, build_tiny_tokenizer(TINY.vocab_size), str(tmp_path), name="unipic-tiny", source="test")
    # floats (the preview map is a least-squares fit) may differ in the last digit between CPUs;
    # keys that only describe the graphs and came after the committed export (flops, precision:
    # issue 13) are compared once the committed model is re-exported with them
    skip = {"source"} | ({"flops", "precision"} - man.keys())
    assert _approx_equal({k: v for k, v in man.items() if k not in skip},
                         {k: v for k, v in fresh.items() if k not in skip}), "manifest differs from a fresh export"
    for role in man["graphs"]:
        assert parity(model, COMMITTED, role, f"committed unipic-tiny/{role}", seed=9, B=2, V=3, n=2, P=2, T=3) < 1e-4
