"""A synthetic Skywork-UniPic-1 checkpoint: the released file layout and key names (docs/model.md 9.2, 9.3)
at reduced widths and depths, for testing the converter where the real weights are unavailable.

    cd models && /usr/bin/python3 -m toolkit.synthetic OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys

import torch

from .config import UNIPIC_1_5B
from .model import UniPic, init_random
from .tokenizer import IMAGE, build_tiny_tokenizer

# Same structure as the release (KL-16 with 5 levels -> stride 16, GQA 2 KV heads, MAR head_dim 80).
SYNTH = UNIPIC_1_5B.replace(
    name="synthetic", vocab_size=800, llm_hidden=96, llm_layers=2, llm_heads=6, llm_kv_heads=2,
    llm_head_dim=16, llm_mlp=160, mar_width=160, mar_heads=2, mar_enc_blocks=2, mar_dec_blocks=1,
    buffer_tokens=8, native_grid=4, head_width=96, head_blocks=2,
    vae_ch=32, vae_ch_mult=(1, 1, 2, 2, 4), vae_res_blocks=2, resolutions=(64, 128), default_resolution=128)


def write_synthetic_checkpoint(out: str, seed: int = 0, dtype=torch.bfloat16, cfg=SYNTH) -> UniPic:
    """Writes out/pytorch_model.bin, out/kl16.ckpt, out/Qwen2.5-1.5B-Instruct/{config,tokenizer}.json.
    Returns the float32 model whose bf16-rounded weights were written."""
    os.makedirs(os.path.join(out, "Qwen2.5-1.5B-Instruct"), exist_ok=True)
    model = init_random(UniPic(cfg), seed)
    with torch.no_grad():  # make the reference exactly the bf16 weights the converter will read
        for p in model.parameters():
            p.copy_(p.to(dtype).float())
    sd = model.state_dict()
    main = {k: v.to(dtype) for k, v in sd.items() if not k.startswith("vae.")}
    # keys the release also carries and the converter must ignore
    main["llm.lm_head.weight"] = main["llm.model.embed_tokens.weight"].clone()
    main["mar.class_emb.weight"] = torch.zeros(1000, cfg.mar_width, dtype=dtype)
    main["siglip2_proj.0.weight"] = torch.zeros(cfg.llm_hidden, 8, dtype=dtype)
    main["siglip2.vision_model.embeddings.patch_embedding.weight"] = torch.zeros(8, 3, 2, 2, dtype=dtype)
    torch.save(main, os.path.join(out, "pytorch_model.bin"))
    vae = {k[4:]: v.clone() for k, v in sd.items() if k.startswith("vae.")}
    torch.save({"model": vae, "epoch": 0}, os.path.join(out, "kl16.ckpt"))
    qdir = os.path.join(out, "Qwen2.5-1.5B-Instruct")
    qcfg = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": cfg.llm_hidden,
            "num_hidden_layers": cfg.llm_layers, "num_attention_heads": cfg.llm_heads,
            "num_key_value_heads": cfg.llm_kv_heads, "intermediate_size": cfg.llm_mlp,
            "rms_norm_eps": cfg.rms_eps, "rope_theta": cfg.rope_theta, "vocab_size": cfg.vocab_size,
            "tie_word_embeddings": True, "hidden_act": "silu"}
    with open(os.path.join(qdir, "config.json"), "w") as f:
        json.dump(qcfg, f, indent=1)
    tok = build_tiny_tokenizer()
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != IMAGE]  # as Qwen2.5 ships
    with open(os.path.join(qdir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(qdir, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 32768, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, f)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m toolkit.synthetic OUT_DIR")
    write_synthetic_checkpoint(sys.argv[1])
    print(f"wrote a synthetic checkpoint to {sys.argv[1]}")
