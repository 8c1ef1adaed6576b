"""Convert the released Skywork-UniPic-1 checkpoint to the unipic-onnx/1 layout (docs/model.md 9.2, 9.3).

    cd models && /usr/bin/python3 -m toolkit.convert CHECKPOINT_DIR OUT_DIR [--resolutions 512,1024]

CHECKPOINT_DIR holds the released files:
  pytorch_model.bin                 llm.* / mar.* / proj_in.* / proj_out.* (siglip2*, class_emb ignored)
  kl16.ckpt                         {"model": VAE state dict, unprefixed keys}
  Qwen2.5-1.5B-Instruct/config.json and tokenizer.json (tokenizer_config.json if present)
Dims are read from config.json and the tensor shapes, so reduced synthetic checkpoints convert too.
Every missing or mis-shaped key stops the conversion with a message that names it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from .config import UNIPIC_1_5B
from .export import TOKENIZER_CONFIG, add_graph_options, export
from .model import UniPic
from .tokenizer import IMAGE

QWEN_DIR = "Qwen2.5-1.5B-Instruct"
PREFIXES = ("llm.", "mar.", "proj_in.", "proj_out.")


class CheckpointError(ValueError):
    pass


def _load(path):
    if not os.path.exists(path):
        raise CheckpointError(f"missing file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch < 1.13.0 final / no weights_only argument
        return torch.load(path, map_location="cpu")


def _count(sd, prefix, suffix):
    n = 0
    while f"{prefix}{n}{suffix}" in sd:
        n += 1
    return n


def _need(sd, key, where):
    if key not in sd:
        raise CheckpointError(f"{where}: missing key {key!r}")
    return sd[key]


def infer_config(main_sd, vae_sd, qwen_cfg, mar_heads=None):
    """Released dims come from Qwen's config.json and the tensor shapes (MAR/head/VAE)."""
    w = "pytorch_model.bin"
    zp = _need(main_sd, "mar.z_proj.weight", w)                      # [W, C]
    W, C = zp.shape
    enc_pos = _need(main_sd, "mar.encoder_pos_embed_learned", w)     # [1, buf+G^2, W]
    diff_pos = _need(main_sd, "mar.diffusion_pos_embed_learned", w)  # [1, G^2, W]
    G = int(round(diff_pos.shape[1] ** 0.5))
    if G * G != diff_pos.shape[1]:
        raise CheckpointError(f"{w}: mar.diffusion_pos_embed_learned has {diff_pos.shape[1]} rows, not a square grid")
    fc1 = _need(main_sd, "mar.encoder_blocks.0.mlp.fc1.weight", w)
    D = _need(main_sd, "mar.diffloss.net.input_proj.weight", w).shape[0]
    ch = _need(vae_sd, "encoder.conv_in.weight", "kl16.ckpt").shape[0]
    nlev = _count(vae_sd, "encoder.down.", ".block.0.conv1.weight")
    mult = tuple(int(vae_sd[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // ch) for i in range(nlev))
    H = int(qwen_cfg["hidden_size"])
    nh = int(qwen_cfg["num_attention_heads"])
    return UNIPIC_1_5B.replace(
        vocab_size=int(qwen_cfg["vocab_size"]), llm_hidden=H, llm_layers=int(qwen_cfg["num_hidden_layers"]),
        llm_heads=nh, llm_kv_heads=int(qwen_cfg.get("num_key_value_heads", nh)), llm_head_dim=H // nh,
        llm_mlp=int(qwen_cfg["intermediate_size"]), rms_eps=float(qwen_cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(qwen_cfg.get("rope_theta", 1e6)),
        latent_channels=int(C), mar_width=int(W), mar_heads=mar_heads or max(1, int(W) // 80),
        mar_enc_blocks=_count(main_sd, "mar.encoder_blocks.", ".norm1.weight"),
        mar_dec_blocks=_count(main_sd, "mar.decoder_blocks.", ".norm1.weight"),
        mar_mlp_ratio=fc1.shape[0] / W, buffer_tokens=int(enc_pos.shape[1] - G * G), native_grid=G,
        head_width=int(D), head_blocks=_count(main_sd, "mar.diffloss.net.res_blocks.", ".in_ln.weight"),
        vae_ch=int(ch), vae_ch_mult=mult, vae_res_blocks=_count(vae_sd, "encoder.down.0.block.", ".conv1.weight"))


def load_into(model, main_sd, vae_sd) -> list:
    """Copies every parameter by name; raises on a missing or mis-shaped key. Returns ignored keys."""
    target = model.state_dict()
    new = {}
    for key, t in target.items():
        if key.startswith("vae."):
            src, sk, where = vae_sd, key[4:], "kl16.ckpt[\"model\"]"
        else:
            src, sk, where = main_sd, key, "pytorch_model.bin"
        v = _need(src, sk, where)
        if tuple(v.shape) != tuple(t.shape):
            raise CheckpointError(f"{where}: key {sk!r} has shape {tuple(v.shape)}, expected {tuple(t.shape)}")
        new[key] = v.detach().to(torch.float32)
    model.load_state_dict(new, strict=True)
    used = {k for k in target if not k.startswith("vae.")}
    return sorted(k for k in main_sd if k not in used)


def prepare_tokenizer(qdir, vocab_size):
    """Qwen2.5's tokenizer.json plus the <image> special token (docs/model.md §4.3: first id after the added
    specials, 151665 for Qwen2.5)."""
    path = os.path.join(qdir, "tokenizer.json")
    if not os.path.exists(path):
        raise CheckpointError(f"missing file: {path}")
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    added = spec.setdefault("added_tokens", [])
    for s in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        if not any(t["content"] == s for t in added):
            raise CheckpointError(f"{path}: special token {s!r} not found")
    if not any(t["content"] == IMAGE for t in added):
        nid = max([t["id"] for t in added] + list(spec["model"]["vocab"].values())) + 1
        if nid >= vocab_size:
            raise CheckpointError(f"no room for {IMAGE}: id {nid} >= vocab_size {vocab_size}")
        added.append({"id": nid, "content": IMAGE, "single_word": False, "lstrip": False, "rstrip": False,
                      "normalized": False, "special": True})
    cfg_path = os.path.join(qdir, "tokenizer_config.json")
    tcfg = dict(TOKENIZER_CONFIG)
    if os.path.exists(cfg_path):
        with open(cfg_path, encoding="utf-8") as f:
            src = json.load(f)
        tcfg.update({k: v for k, v in src.items() if k in ("model_max_length", "clean_up_tokenization_spaces")})
    return spec, tcfg


def convert(ckpt_dir, out_dir, resolutions=(512, 1024), mar_heads=None, log=print, fused=False, fp16=False) -> dict:
    main_path = os.path.join(ckpt_dir, "pytorch_model.bin")
    vae_path = os.path.join(ckpt_dir, "kl16.ckpt")
    qdir = os.path.join(ckpt_dir, QWEN_DIR)
    qcfg_path = os.path.join(qdir, "config.json")
    if not os.path.exists(qcfg_path):
        raise CheckpointError(f"missing file: {qcfg_path}")
    with open(qcfg_path) as f:
        qcfg = json.load(f)
    main_sd = _load(main_path)
    if not isinstance(main_sd, dict):
        raise CheckpointError(f"{main_path}: not a state dict")
    for wrap in ("state_dict", "module"):
        if wrap in main_sd and isinstance(main_sd[wrap], dict) and len(main_sd) == 1:
            main_sd = main_sd[wrap]
    vae_ck = _load(vae_path)
    if not isinstance(vae_ck, dict) or "model" not in vae_ck:
        raise CheckpointError(f"{vae_path}: expected a dict with the VAE under \"model\"")
    vae_sd = vae_ck["model"]
    cfg = infer_config(main_sd, vae_sd, qcfg, mar_heads)
    cfg = cfg.replace(resolutions=tuple(resolutions), default_resolution=max(resolutions))
    for r in resolutions:
        cfg.grid(r)
    model = UniPic(cfg)
    ignored = load_into(model, main_sd, vae_sd)
    if "llm.lm_head.weight" in main_sd and not torch.equal(
            main_sd["llm.lm_head.weight"].float(), main_sd["llm.model.embed_tokens.weight"].float()):
        log("warning: llm.lm_head.weight differs from embed_tokens; the export ties them (docs/model.md §2.1)")
    tok_spec, tok_cfg = prepare_tokenizer(qdir, cfg.vocab_size)
    man = export(model.eval(), tok_spec, out_dir, list(resolutions), name="unipic-1.5b",
                 source=f"converted from {os.path.abspath(ckpt_dir)}", fused=fused, fp16=fp16)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f, indent=1)
    log(f"converted {len(model.state_dict())} tensors; ignored {len(ignored)} keys "
        f"({', '.join(sorted({k.split('.')[0] + '.' + k.split('.')[1] for k in ignored})[:6])})")
    return {"manifest": man, "model": model, "ignored": ignored}


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.convert", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--resolutions", default="512,1024")
    ap.add_argument("--mar-heads", type=int, help="MAR attention heads (default width/80, mar_huge)")
    add_graph_options(ap)
    a = ap.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    try:
        convert(a.checkpoint_dir, a.out_dir, [int(r) for r in a.resolutions.split(",")], a.mar_heads,
                fused=a.fused_attention, fp16=a.fp16)
    except CheckpointError as e:
        sys.exit(f"convert: {e}")


if __name__ == "__main__":
    main()
