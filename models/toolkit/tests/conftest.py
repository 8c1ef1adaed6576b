"""Shared fixtures. Run from models/: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m pytest -q toolkit/tests"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from toolkit.config import TINY  # noqa: E402
from toolkit.export import export  # noqa: E402
from toolkit.model import UniPic, init_random  # noqa: E402
from toolkit.tokenizer import ByteLevelBPE, build_tiny_tokenizer, tiny_serving_tokenizer  # noqa: E402

torch.set_num_threads(1)

from toolkit.parity import PARITY  # noqa: E402


def pytest_terminal_summary(terminalreporter):
    if PARITY:
        terminalreporter.write_line("ONNX vs torch max abs diff (onnxruntime-node 1.30 CPU):")
        for k in sorted(PARITY):
            terminalreporter.write_line(f"  {k:40s} {PARITY[k]:.3e}")


@pytest.fixture(scope="session")
def tiny():
    return init_random(UniPic(TINY), 0)


@pytest.fixture(scope="session")
def tok():
    return ByteLevelBPE(build_tiny_tokenizer(TINY.vocab_size))


@pytest.fixture(scope="session")
def tiny_export(tiny, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("unipic-tiny"))
    man = export(tiny, tiny_serving_tokenizer(TINY.vocab_size), out, name="unipic-tiny", source="test")
    return out, man


def pytest_configure(config):
    # torch.onnx export chatter (constant folding, tracer notes) is expected and harmless here
    config.addinivalue_line("filterwarnings", "ignore::UserWarning:torch.onnx.*")
    config.addinivalue_line("filterwarnings", "ignore::UserWarning:torch._tensor")
    config.addinivalue_line("filterwarnings", "ignore::torch.jit.TracerWarning")
