"""Byte-level BPE in the Hugging Face tokenizers format (the format of Qwen2.5's tokenizer.json).

- `ByteLevelBPE`: a small pure-Python encoder/decoder for tokenizer.json files of this kind (Qwen2
  pre-tokenizer regex + ByteLevel + BPE + special added tokens). Used for the tiny model and fixtures.
- `build_tiny_tokenizer()`: writes the tiny model's tokenizer.json: the 256-byte alphabet, merges
  that make every ShapesWorld word and template word one token, and Qwen's chat special tokens.
- Prompt templates (docs/model.md 3.1, 4.3, 5, 6): no system turn.
"""

from __future__ import annotations

import json
import re
import unicodedata

ENDOFTEXT, IM_START, IM_END, IMAGE = "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"
USER_PREFIX = "<|im_start|>user\n"
ASSISTANT_PREFIX = "<|im_end|>\n<|im_start|>assistant\n"
T2I_POSITIVE = "Generate an image: {prompt}"
T2I_NEGATIVE = "Generate an image."
EDIT_POSITIVE = "{image}\n{instruction}"
EDIT_NEGATIVE = "{image}\nRepeat this image."
# UniPic's unconditional edit prompt (its edit training data, docs/model.md §4): the instruction
# dropped, the edit target kept. Training only (train_args --edit-uncond); never sampled with.
EDIT_UNCOND = "{image}\nEdit this image."
UNDERSTAND = "{image}\n{question}"

# Qwen2's pre-tokenizer regex, as written in its tokenizer.json (goes to the JS side verbatim).
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
               r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# The same for Python's re: \p{L} -> [^\W\d_], \p{N} -> \d, "not letter/number" -> [\W_].
_PY_REGEX = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:(?![\r\n])[\W_])?[^\W\d_]+|\d|"
    r" ?(?:(?!\s)[\W_])+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def chat(text: str) -> str:
    """Wrap one user turn; no system message (docs/model.md §3.1)."""
    return USER_PREFIX + text + ASSISTANT_PREFIX


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (ByteLevel)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
U2B = {v: k for k, v in B2U.items()}


def _normalizer(spec: dict | None):
    """The tokenizer.json normalizers this project writes, as @huggingface/tokenizers applies them to
    the text between added tokens: NFC, Replace (String or Regex pattern; the content is literal, as
    in the Rust library, so rules never rely on "$1"), and a Sequence of them."""
    if spec is None:
        return lambda text: text
    kind = spec.get("type")
    if kind == "NFC":
        return lambda text: unicodedata.normalize("NFC", text)
    if kind == "Replace":
        pat = spec["pattern"]
        rx = re.compile(pat["Regex"]) if "Regex" in pat else re.compile(re.escape(pat["String"]))
        content = spec["content"]
        return lambda text: rx.sub(lambda _m: content, text)
    if kind == "Sequence":
        steps = [_normalizer(n) for n in spec["normalizers"]]

        def run(text: str) -> str:
            for step in steps:
                text = step(text)
            return text
        return run
    raise ValueError(f"normalizer type {kind!r} is not supported (NFC, Replace, Sequence)")


class ByteLevelBPE:
    def __init__(self, spec: dict):
        model = spec["model"]
        if model.get("type") != "BPE":
            raise ValueError("only BPE tokenizer.json files are supported")
        self.vocab: dict[str, int] = dict(model["vocab"])
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.id_to_tok = {i: t for t, i in self.vocab.items()} | {i: t for t, i in self.added.items()}
        alts = sorted(self.added, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(re.escape(a) for a in alts) + ")") if alts else None
        self._normalize = _normalizer(spec.get("normalizer", {"type": "NFC"}))
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_file(cls, path) -> "ByteLevelBPE":
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def _bpe(self, word: str) -> list[int]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word)
        while len(parts) > 1:
            best, pos = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, pos = r, i
            if best is None:
                break
            a, b = parts[pos], parts[pos + 1]
            out, i = [], 0
            while i < len(parts):  # merge every occurrence of (a, b), left to right
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        ids = [self.vocab[p] for p in parts]
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        chunks = self._split.split(text) if self._split else [text]
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self.added:
                ids.append(self.added[chunk])
                continue
            chunk = self._normalize(chunk)
            for piece in _PY_REGEX.findall(chunk):
                ids.extend(self._bpe("".join(B2U[b] for b in piece.encode("utf-8"))))
        return ids

    def decode(self, ids, skip_special: bool = False) -> str:
        out, buf = [], []
        for i in ids:
            t = self.id_to_tok[int(i)]
            if t in self.added:
                if buf:
                    out.append(bytes(buf).decode("utf-8", "replace"))
                    buf = []
                if not skip_special:
                    out.append(t)
            else:
                buf.extend(U2B[c] for c in t)
        if buf:
            out.append(bytes(buf).decode("utf-8", "replace"))
        return "".join(out)

    def __len__(self):
        return max(self.id_to_tok) + 1


# ---------------------------------------------------------------------------------------------
# The tiny model's vocabulary (ShapesWorld, docs/shapesworld.md sections 1-3, plus the templates)

TINY_WORDS = """
circle circles square squares triangle triangles shape shapes object objects
red green blue yellow purple orange color colour colors
left right top bottom center middle of above below
zero one two three four five yes no
a an and what is the how many are there where make remove add move on to in at
generate image repeat this edit describe detail it its with
user assistant
""".split()
TINY_PUNCT = ["?", ".", ":", ",", "!", "'", "\n", "\n\n", ".\n", "?\n"]


def _merge_targets() -> list[str]:
    out = []
    for w in TINY_WORDS:
        for v in (w, w.capitalize()):
            for s in (v, " " + v):
                out.append(s)
    for p in TINY_PUNCT:
        out.extend([p, " " + p] if "\n" not in p else [p])
    return out


def build_tiny_tokenizer(vocab_size: int | None = None) -> dict:
    """-> tokenizer.json dict. Ids: 0..255 the byte alphabet (by byte value), then one id per merge,
    then the special tokens. Raises if vocab_size is given and too small."""
    vocab = {B2U[b]: b for b in range(256)}
    merges: list[tuple[str, str]] = []

    def spec():
        return {"model": {"type": "BPE", "vocab": vocab, "merges": [" ".join(m) for m in merges]},
                "added_tokens": []}

    for target in _merge_targets():
        enc = ByteLevelBPE(spec())
        word = "".join(B2U[b] for b in target.encode("utf-8"))
        ids = enc._bpe(word)
        while len(ids) > 1:  # merge the first two pieces; appended merges never disturb earlier words
            inv = {i: t for t, i in vocab.items()}
            a, b = inv[ids[0]], inv[ids[1]]
            merges.append((a, b))
            if a + b not in vocab:
                vocab[a + b] = len(vocab)
            enc = ByteLevelBPE(spec())
            ids = enc._bpe(word)
    n = len(vocab)
    specials = [ENDOFTEXT, IM_START, IM_END, IMAGE]
    if vocab_size is not None and n + len(specials) > vocab_size:
        raise ValueError(f"tokenizer needs {n + len(specials)} ids > vocab_size {vocab_size}")
    added = [{"id": n + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, s in enumerate(specials)]
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_REGEX}, "behavior": "Isolated", "invert": False},
            dict(bl)]},
        "post_processor": dict(bl), "decoder": dict(bl),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [" ".join(m) for m in merges]},
    }


# ShapesWorld's grammar, and so the tiny model's training texts, say "a orange" (orange is the one
# world word after "a" that starts with a vowel); users write "an orange", which the weights until run
# cpu20 misread (questions 0.15 against 0.95 as written: toolkit.articles,
# models/checkpoints/unipic-tiny-runs/cpu20/articles.json). The exported tokenizer rewrites "an"/"An"
# before "orange" to the trained article, so the model reads the ids it was trained on; both
# @huggingface/tokenizers and ByteLevelBPE apply it. It names the word rather than every vowel: the
# templates' "Generate an image" is trained as written. Training keeps the plain NFC spec, so
# --article-an still shows the model "an". Literal content, no "$1" (see _normalizer).
SERVING_RULES = [
    {"type": "Replace", "pattern": {"Regex": r"\ban (?=[Oo]range\b)"}, "content": "a "},
    {"type": "Replace", "pattern": {"Regex": r"\bAn (?=[Oo]range\b)"}, "content": "A "},
]


def serving_tokenizer(spec: dict) -> dict:
    """-> the tokenizer.json an export writes: `spec` with SERVING_RULES after its normalizer."""
    base = spec.get("normalizer") or {"type": "NFC"}
    return {**spec, "normalizer": {"type": "Sequence", "normalizers": [base, *SERVING_RULES]}}


def tiny_serving_tokenizer(vocab_size: int | None = None) -> dict:
    """-> the tokenizer.json every tiny export writes (the tiny vocabulary with the serving rules)."""
    return serving_tokenizer(build_tiny_tokenizer(vocab_size))


def special_ids(tok: ByteLevelBPE) -> dict:
    """Ids the manifest declares (docs/model.md §5: eos = <|im_end|>, pad = <|endoftext|>, image = <image>)."""
    for s in (ENDOFTEXT, IM_START, IM_END, IMAGE):
        if s not in tok.added:
            raise KeyError(f"tokenizer has no special token {s}")
    return {"endoftext": tok.added[ENDOFTEXT], "im_start": tok.added[IM_START],
            "im_end": tok.added[IM_END], "image": tok.added[IMAGE],
            "eos": tok.added[IM_END], "pad": tok.added[ENDOFTEXT]}
