"""The GPU check of issue 13 (item 2), one command (`scripts/gpu-check.sh`): build the synthetic
checkpoint at full size, convert it with fused attention in fp16, and print JSON lines, one metric
a line: generation time at 512x512 and 1024x1024 for the engine (ENGINE_PROVIDER=webgpu, through
scripts/gpu-engine.ts) and for the toolkit's torch reference (CUDA, fp16 autocast, the same steps and
parameters), peak GPU memory of each, and the throughput of 4 jobs batched against 1.
Goals (issue 13): engine <= 2x torch at 1024, under 15 GB, batch of 4 >= 2.5x the throughput of one.

    cd models && python3 -m toolkit.gpu_check --work /tmp/gpu-check            # on the GPU machine
    cd models && python3 -m toolkit.gpu_check --work /tmp/gpu-check --tiny     # CPU dry run, small widths

Without a CUDA GPU (and without --tiny) it prints one line saying so and exits 0. Every step that
cannot run (no node, no webgpu adapter) prints a line with "value": null and the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import torch

from .config import UNIPIC_1_5B
from .convert import convert
from .evaluate import DeviceModel
from .ortnode import OnnxUniPic, OrtServer, node_available
from .sampler import Draws, Runner
from .synthetic import SYNTH, write_synthetic_checkpoint
from .tokenizer import ByteLevelBPE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FULL = UNIPIC_1_5B.replace(name="synthetic-full")


def emit(metric, value, **kw):
    print(json.dumps({"metric": metric, "value": value, **kw}), flush=True)


class Fp16Device(DeviceModel):
    """DeviceModel with float16 autocast on CUDA (the reference the engine's fp16 graphs are held to)."""

    def _go(self, fn, *args):
        a = [x.to(self.dev) if isinstance(x, torch.Tensor) else x for x in args]
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=self.dev.type == "cuda"):
            return fn(*a)


class PyOrt:
    """OrtServer's interface over Python's onnxruntime (CPU provider): the GPU image has it, Debian
    here has not (then ortnode's node process serves)."""

    def __init__(self):
        import onnxruntime
        self.ort, self.sessions = onnxruntime, {}

    def run(self, path, inputs, outputs):
        if path not in self.sessions:
            self.sessions[path] = self.ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        feeds = {}
        for k, v in inputs.items():
            x = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            feeds[k] = x.astype(np.int64 if x.dtype.kind in "iu" else np.float32)
        return dict(zip(outputs, self.sessions[path].run(list(outputs), feeds)))

    def close(self):
        self.sessions.clear()


def parity(model, tok, out, size, dev):
    """Issue 13 item 1 at full size: the fused fp16 graphs (onnxruntime, CPU provider) driven by the
    reference sampler against torch float32 on `dev`, same draws: tokens within fp16 tolerance
    (|d|/(1+|ref|) < 5e-2, as toolkit/tests/test_fused.py)."""
    try:
        srv = PyOrt()
    except ImportError:
        srv = OrtServer() if node_available() else None
    if srv is None:
        emit("parity_tokens", None, reason="neither onnxruntime for Python nor node + onnxruntime-node here")
        return
    params = {"steps": 4, "cfg": 3.0, "cfgSchedule": "constant", "temperature": 1.0, "diffusionSteps": 10}
    try:
        ref, _ = Runner(DeviceModel(model.to(dev).eval(), dev), tok, size).generate(["a red circle"], Draws(5), params)
        t0 = time.perf_counter()
        got, _ = Runner(OnnxUniPic(out, model.cfg, srv), tok, size).generate(["a red circle"], Draws(5), params)
        rel = float((np.abs(got.numpy() - ref.numpy()) / (1 + np.abs(ref.numpy()))).max())
        emit("parity_tokens", round(rel, 6), ok=rel < 5e-2, resolution=size, reference=f"torch float32 on {dev}",
             graphs="fused fp16, onnxruntime CPU", onnx_s=round(time.perf_counter() - t0, 1), **params)
    finally:
        srv.close()


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def torch_reference(model, tok, sizes, params, dev, batch):
    """Generation time per size (one warm-up run each, then one timed), peak memory, batch ratio."""
    ref = Fp16Device(model.to(dev).eval(), dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = {}
    for size in sizes:
        runner = Runner(ref, tok, size)
        runner.generate(["a red circle"], Draws(0), params)
        _sync(dev)
        t0 = time.perf_counter()
        runner.generate(["a red circle"], Draws(1), params)
        _sync(dev)
        times[size] = (time.perf_counter() - t0) * 1000
        emit("torch_generate_ms", round(times[size], 1), resolution=size, device=str(dev), dtype="float16 autocast" if dev.type == "cuda" else "float32", **params)
    size = sizes[0]
    t0 = time.perf_counter()
    Runner(ref, tok, size).generate(["a red circle"] * batch, Draws(2), params)
    _sync(dev)
    together = (time.perf_counter() - t0) * 1000
    emit("torch_batch_throughput", round(batch * times[size] / together, 2), jobs=batch, resolution=size,
         single_ms=round(times[size], 1), batched_ms=round(together, 1))
    if dev.type == "cuda":
        emit("torch_peak_gpu_mb", round(torch.cuda.max_memory_allocated() / 2**20), note="torch.cuda.max_memory_allocated")
    return times


class GpuMemory:
    """Peak of nvidia-smi's memory.used while the engine runs (onnxruntime-node reports no memory)."""

    def __init__(self):
        self.peak, self.base, self._stop = None, None, threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def read():
        if shutil.which("nvidia-smi") is None:
            return None
        r = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                           capture_output=True, text=True)
        return int(r.stdout.split()[0]) if r.returncode == 0 and r.stdout.strip() else None

    def _poll(self):
        while not self._stop.wait(0.2):
            m = self.read()
            if m is not None:
                self.peak = max(self.peak or 0, m)

    def __enter__(self):
        self.base = self.read()
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _engine_command():
    """node and the engine script: the packed ones (scripts/gpu-pack.sh, unpacked into .gpu/) or
    this checkout's node_modules through tsx; None when neither is here."""
    gpu = os.path.join(REPO, ".gpu")
    node = os.path.join(gpu, "bin", "node")
    node = node if os.path.exists(node) else shutil.which("node")
    packed = os.path.join(gpu, "gpu-engine.mjs")
    if node and os.path.exists(packed) and os.path.isdir(os.path.join(gpu, "node_modules", "onnxruntime-node")):
        return [node, packed]
    tsx = os.path.join(REPO, "node_modules", ".bin", "tsx")
    if node and os.path.exists(tsx):
        return [tsx, os.path.join(REPO, "scripts", "gpu-engine.ts")]
    return None


def engine_runs(model_dir, sizes, params, batch, provider, timeout, matmul_size):
    """scripts/gpu-engine.ts in node; its JSON lines are relayed."""
    cmd = _engine_command()
    if cmd is None:
        emit("engine_generate_ms", None, reason="no node with onnxruntime-node here (neither .gpu/ from "
             "scripts/gpu-pack.sh nor node_modules): README, The GPU path")
        return
    cmd += [model_dir, "--sizes", ",".join(map(str, sizes)),
            "--steps", str(params["steps"]), "--diffusion-steps", str(params["diffusionSteps"]),
            "--cfg", str(params["cfg"]), "--batch", str(batch), "--provider", provider, "--matmul-size", str(matmul_size)]
    with GpuMemory() as mem:
        p = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            emit("engine_timeout", None, reason=f"the engine runs passed {timeout} s and were stopped")
    for line in out.splitlines():
        if line.startswith("{"):
            print(line, flush=True)
    if p.returncode not in (0, None, -9):
        emit("engine_error", None, reason=err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
    if mem.peak is not None:
        emit("engine_peak_gpu_mb", mem.peak - (mem.base or 0), note="nvidia-smi memory.used, peak minus before")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m toolkit.gpu_check", description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="folder for the checkpoint and the converted model")
    ap.add_argument("--tiny", action="store_true", help="small widths at 64/128 pixels, CPU allowed (dry run)")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--diffusion-steps", type=int, default=100)
    ap.add_argument("--cfg", type=float, default=3.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--provider", default=os.environ.get("ENGINE_PROVIDER", "webgpu"))
    ap.add_argument("--engine-timeout", type=int, default=420)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--skip-parity", action="store_true")
    a = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    if not cuda and not a.tiny:
        emit("gpu_check", None, reason="no CUDA GPU here (torch.cuda.is_available() is False); "
             "`--tiny` runs the same steps at small widths on the CPU")
        return 0
    dev = torch.device("cuda" if cuda else "cpu")
    # sizes timed; the parity size (256 at full size, issue 13 item 1) gets positional tables too
    cfg, sizes, check = (SYNTH, [64, 128], 64) if a.tiny else (FULL, [512, 1024], 256)
    ck, out = os.path.join(a.work, "checkpoint"), os.path.join(a.work, "model")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    write_synthetic_checkpoint(ck, seed=0, cfg=cfg)
    emit("build_checkpoint_s", round(time.perf_counter() - t0, 1), config=cfg.name)
    t0 = time.perf_counter()
    res = convert(ck, out, resolutions=sorted({check, *sizes}), log=lambda *x: None, fused=True, fp16=True)
    weights = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    emit("convert_s", round(time.perf_counter() - t0, 1), fused_attention=True, fp16=True, model_mb=round(weights / 2**20))
    params = {"steps": a.steps, "cfg": a.cfg, "cfgSchedule": "constant", "temperature": 1.0, "diffusionSteps": a.diffusion_steps}
    with open(os.path.join(out, "tokenizer.json"), encoding="utf-8") as f:
        tok = ByteLevelBPE(json.load(f))
    if not a.skip_parity:
        parity(res["model"], tok, out, check, dev)
    if not a.skip_torch:
        torch_reference(res["model"], tok, sizes, params, dev, a.batch)
        res["model"].cpu()
        if cuda:
            torch.cuda.empty_cache()
    engine_runs(out, sizes, params, a.batch, a.provider, a.engine_timeout, 512 if a.tiny else 4096)
    return 0


if __name__ == "__main__":
    sys.exit(main())
