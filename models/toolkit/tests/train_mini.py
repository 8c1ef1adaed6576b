"""The narrowed tiny config and helpers shared by the training tests (test_train*.py).

A copy of the tiny config with the same vocabulary, latent, grid and buffers and smaller widths and
depths, so that training steps run in seconds on 2 shared cores. Test modules import `mini_config`
(an autouse fixture: importing it registers "tiny-test" for every test of the module)."""

import json
import os

import pytest
import torch

from toolkit import config as C
from toolkit import train_data as D
from toolkit import train_losses as TL
from toolkit import train_state as TS
from toolkit.model import UniPic

MINI = C.TINY.replace(name="tiny-test", llm_hidden=64, llm_layers=1, llm_heads=2, llm_kv_heads=1,
                      llm_head_dim=32, llm_mlp=128, mar_width=64, mar_heads=2, mar_enc_blocks=1,
                      mar_dec_blocks=1, head_width=64, head_blocks=1, vae_ch=32, vae_ch_mult=(1, 1, 1, 1),
                      sampling={"steps": 2, "cfg": 2.0, "cfgSchedule": "constant", "temperature": 1.0,
                                "diffusionSteps": 2})


@pytest.fixture(autouse=True)
def mini_config(monkeypatch):
    monkeypatch.setitem(C.CONFIGS, "tiny-test", MINI)


def dims(bg=4, be=3, bu=3):
    return {"size": 64, "L": 64, "img_tokens": 68, "cfg_drop": 0.1, "vocab_size": MINI.vocab_size,
            "batch_gen": bg, "batch_edit": be, "batch_und": bu}


def setup_model(seed=0):
    torch.manual_seed(seed)
    m = TS.init_train(UniPic(MINI), seed)
    for p in m.vae.parameters():
        p.requires_grad_(False)
    obj = TL.Objective(m, "cpu", mul=2)
    obj.ids = D.tiny_tokenizer(MINI.vocab_size)[1]
    return m, obj


ARGS = ["--config", "tiny-test", "--vae-steps", "2", "--vae-batch", "4", "--vae-agree-n", "4",
        "--vae-stats-n", "8", "--batch-gen", "3", "--batch-edit", "2", "--batch-und", "2", "--diff-mul", "2",
        "--warmup", "2", "--log-every", "1", "--eval-every", "0", "--no-final-eval", "--no-export",
        "--bf16", "off"]


def run_log(out):
    with open(os.path.join(out, "log.jsonl")) as f:
        return [json.loads(x) for x in f]
