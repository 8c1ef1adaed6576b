"""Model configurations (docs/model.md section 2.1 for the released dims).

One dataclass sizes every module, so the same code builds the released Skywork-UniPic-1.5B
(`unipic-1.5b`) and the small reference model (`tiny`). Values not tied to a checkpoint shape
(resolutions, sampling defaults) are declared here too and end up in manifest.json, so the
TypeScript engine never holds a model constant.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field


@dataclass
class UniPicConfig:
    name: str
    # --- LLM: Qwen2 decoder (docs/model.md §2.1) ---
    vocab_size: int
    llm_hidden: int
    llm_layers: int
    llm_heads: int
    llm_kv_heads: int
    llm_head_dim: int
    llm_mlp: int
    rms_eps: float = 1e-6
    rope_theta: float = 1e6
    # --- MAR encoder/decoder (docs/model.md §2.1, 2.2) ---
    latent_channels: int = 16          # token_embed_dim
    mar_width: int = 1280
    mar_heads: int = 16
    mar_enc_blocks: int = 20
    mar_dec_blocks: int = 20
    mar_mlp_ratio: float = 4.0
    buffer_tokens: int = 64
    native_grid: int = 32              # grid of the stored positional tables (docs/model.md §2.3)
    ln_eps: float = 1e-6
    # --- diffusion head, SimpleMLPAdaLN (docs/model.md §3.5) ---
    head_width: int = 1536
    head_blocks: int = 12
    # --- KL VAE (docs/model.md §9.4) ---
    vae_ch: int = 128
    vae_ch_mult: tuple = (1, 1, 2, 2, 4)
    vae_res_blocks: int = 2
    vae_scale: float = 0.2325
    # --- serving declarations (go to manifest.json) ---
    resolutions: tuple = (512, 1024)
    default_resolution: int = 1024
    sampling: dict = field(default_factory=lambda: {
        "steps": 32, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0,
        "diffusionSteps": 100})
    # Overrides of `sampling` for editing only (manifest edit_sampling_defaults, written only when
    # non-empty): editing can need e.g. a lower cfg than generation, since guidance away from
    # "Repeat this image." may destroy what the instruction leaves alone.
    edit_sampling: dict = field(default_factory=dict)
    max_new_tokens: int = 1024

    @property
    def vae_stride(self) -> int:
        # one stride-2 downsample between consecutive levels (docs/model.md §9.4)
        return 2 ** (len(self.vae_ch_mult) - 1)

    def grid(self, resolution: int) -> int:
        if resolution % self.vae_stride:
            raise ValueError(f"resolution {resolution} is not a multiple of the VAE stride {self.vae_stride}")
        return resolution // self.vae_stride

    def replace(self, **kw) -> "UniPicConfig":
        return dataclasses.replace(self, **kw)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["vae_ch_mult"] = list(self.vae_ch_mult)
        d["resolutions"] = list(self.resolutions)
        return d


# Released dims: Qwen2.5-1.5B + mar_huge + 1536x12 head + KL-16 (docs/model.md §2.1, 9.1).
UNIPIC_1_5B = UniPicConfig(
    name="unipic-1.5b", vocab_size=151936, llm_hidden=1536, llm_layers=28, llm_heads=12,
    llm_kv_heads=2, llm_head_dim=128, llm_mlp=8960, rope_theta=1e6)

# Small reference model (docs/model.md section 14, adapted to 64x64 with a real conv KL VAE).
TINY = UniPicConfig(
    name="tiny", vocab_size=768, llm_hidden=256, llm_layers=4, llm_heads=4, llm_kv_heads=2,
    llm_head_dim=64, llm_mlp=768, rope_theta=1e4,
    mar_width=128, mar_heads=4, mar_enc_blocks=2, mar_dec_blocks=2, buffer_tokens=4, native_grid=8,
    head_width=256, head_blocks=3,
    vae_ch=32, vae_ch_mult=(1, 1, 2, 2), vae_res_blocks=1, vae_scale=0.2325,
    resolutions=(64,), default_resolution=64,
    sampling={"steps": 16, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0,
              "diffusionSteps": 25},
    max_new_tokens=16)

CONFIGS = {"unipic-1.5b": UNIPIC_1_5B, "tiny": TINY}


def fit_to_weights(cfg: UniPicConfig, sd: dict) -> UniPicConfig:
    """cfg with the MAR block counts, LLM depth, buffer count and diffusion-head depth of a state dict:
    each is a knob a run may grow (`toolkit.train --mar-enc-blocks`, `--mar-dec-blocks`,
    `--llm-layers`, `--buffer-tokens`, `--head-blocks`), so weights say what they hold."""
    def count(prefix, default):  # blocks under `prefix.N.`: N + 1 for the highest N
        idx = {int(m.group(1)) for k in sd for m in [re.match(re.escape(prefix) + r"\.(\d+)\.", k)] if m}
        return max(idx) + 1 if idx else default
    pos = sd.get("mar.encoder_pos_embed_learned")  # [1, buf + G*G, W]
    buf = int(pos.shape[1]) - cfg.native_grid ** 2 if pos is not None else cfg.buffer_tokens
    return cfg.replace(mar_enc_blocks=count("mar.encoder_blocks", cfg.mar_enc_blocks),
                       mar_dec_blocks=count("mar.decoder_blocks", cfg.mar_dec_blocks),
                       llm_layers=count("llm.model.layers", cfg.llm_layers), buffer_tokens=buf,
                       head_blocks=count("mar.diffloss.net.res_blocks", cfg.head_blocks))


def get_config(name: str) -> UniPicConfig:
    if name not in CONFIGS:
        raise KeyError(f"unknown config {name!r}; known: {sorted(CONFIGS)}")
    return CONFIGS[name]
