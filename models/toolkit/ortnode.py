"""Run ONNX graphs in onnxruntime-node (via ort_run.mjs) from Python: Debian has no Python ORT.
Inputs/outputs travel as raw little-endian float32/int64 files in a temp dir.

`OnnxUniPic` exposes the role functions of model.UniPic backed by an exported folder, so the
reference sampler (sampler.Runner) can drive the ONNX graphs exactly as the TypeScript engine does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "ort_run.mjs")


def node_available() -> bool:
    if shutil.which("node") is None:
        return False
    return os.path.isdir(os.path.join(HERE, "..", "..", "node_modules", "onnxruntime-node"))


def _write_job(d, model_path, inputs, outputs):
    spec = {}
    for i, (name, arr) in enumerate(inputs.items()):
        a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        dtype = "int64" if a.dtype.kind in "iu" else "float32"
        a = np.ascontiguousarray(a.astype("<i8" if dtype == "int64" else "<f4"))
        fn = f"in{i}.bin"
        a.tofile(os.path.join(d, fn))
        spec[name] = {"dtype": dtype, "shape": list(a.shape), "file": fn}
    with open(os.path.join(d, "job.json"), "w") as f:
        json.dump({"model": os.path.abspath(model_path), "inputs": spec, "outputs": list(outputs)}, f)


def _read_outputs(d, outputs):
    with open(os.path.join(d, "outputs.json")) as f:
        meta = json.load(f)
    out = {}
    for name in outputs:
        m = meta[name]
        dt = "<i8" if m["dtype"] == "int64" else "<f4"
        out[name] = np.fromfile(os.path.join(d, f"out_{name}.bin"), dtype=dt).reshape(m["shape"])
    return out


def run_onnx(model_path: str, inputs: dict, outputs: list) -> dict:
    """One graph, one node process."""
    with tempfile.TemporaryDirectory(prefix="ortjob-") as d:
        _write_job(d, model_path, inputs, outputs)
        r = subprocess.run(["node", SCRIPT, d], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"onnxruntime-node failed on {model_path}:\n{r.stderr[-3000:]}")
        return _read_outputs(d, outputs)


class OrtServer:
    """A persistent node process (sessions cached), for many small calls."""

    def __init__(self):
        self.p = subprocess.Popen(["node", SCRIPT, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, bufsize=1)
        self.dir = tempfile.mkdtemp(prefix="ortserve-")

    def run(self, model_path, inputs, outputs):
        for f in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, f))
        _write_job(self.dir, model_path, inputs, outputs)
        self.p.stdin.write(self.dir + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        if ans != "ok":
            raise RuntimeError(f"onnxruntime-node failed on {model_path}: {ans}")
        return _read_outputs(self.dir, outputs)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Past(list):
    pass


class OnnxUniPic:
    """Role functions of model.UniPic served by the ONNX graphs of an exported folder (manifest-driven)."""

    def __init__(self, folder, cfg, server: OrtServer):
        with open(os.path.join(folder, "manifest.json")) as f:
            self.man = json.load(f)
        self.folder, self.cfg, self.srv = folder, cfg, server
        self.llm = self  # sampler calls model.llm.empty_past(...)
        self.mar = self  # sampler calls model.mar.pos_tables(...)

    def _run(self, role, *args):
        g = self.man["graphs"][role]
        ins = {x["name"]: a for x, a in zip(g["inputs"], args)}
        names = [x["name"] for x in g["outputs"]]
        out = self.srv.run(os.path.join(self.folder, g["file"]), ins, names)
        res = tuple(torch.from_numpy(np.array(out[n])) for n in names)
        return res if len(res) > 1 else res[0]

    def pos_tables(self, h, w):
        r = next(r for r in self.man["resolutions"] if r["grid"] == [h, w])
        pt = r["pos_tables"]
        raw = np.fromfile(os.path.join(self.folder, pt["file"]), dtype="<f4")
        return tuple(torch.from_numpy(np.array(raw[pt[k]["offset"] // 4: pt[k]["offset"] // 4 + int(np.prod(pt[k]["shape"]))]
                                               .reshape(pt[k]["shape"]))) for k in ("enc_pos", "dec_pos", "diff_pos"))

    def empty_past(self, B):
        c = self.cfg
        z = torch.zeros(B, c.llm_kv_heads, 0, c.llm_head_dim)
        return [(z, z) for _ in range(c.llm_layers)]

    def vae_encode(self, px):
        return self._run("vae_encoder", px)

    def vae_decode(self, z):
        return self._run("vae_decoder", z)

    def mar_encoder(self, lat, idx, pos):
        return self._run("mar_encoder", lat, idx, pos)

    def mar_fill(self, x, c):
        return self._run("mar_fill", x, c)

    def mar_decoder(self, x_enc, h, idx, fill, dpos, fpos, pred):
        return self._run("mar_decoder", x_enc, h, idx, fill, dpos, fpos, pred)

    def diffusion_head(self, x, t, c):
        return self._run("diffusion_head", x, t, c)

    def llm_forward(self, ids, emb, emask, attn, pos, past):
        # GroupQueryAttention graphs take T > 1 new tokens after a past one row at a time
        # (manifest kv_cache.rows_with_past, toolkit/fused.py); the engine splits the same way
        limit = self.man["kv_cache"].get("rows_with_past")
        R, T, P = ids.shape[0], ids.shape[1], past[0][0].shape[2]
        if limit is not None and T > 1 and P > 0 and R > limit:
            parts = [self.llm_forward(ids[r:r + 1], emb[r:r + 1], emask[r:r + 1], attn[r:r + 1], pos[r:r + 1],
                                      [(k[r:r + 1], v[r:r + 1]) for k, v in past]) for r in range(R)]
            pres = [(torch.cat([p[2][i][0] for p in parts]), torch.cat([p[2][i][1] for p in parts]))
                    for i in range(self.cfg.llm_layers)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), pres
        flat = [t for kv in past for t in kv]
        out = self._run("llm", ids, emb, emask, attn, pos, *flat)
        pres = [(out[2 + 2 * i], out[3 + 2 * i]) for i in range(self.cfg.llm_layers)]
        return out[0], out[1], pres
