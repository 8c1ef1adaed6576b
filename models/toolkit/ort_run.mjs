// Runs ONNX graphs in onnxruntime-node for the Python parity tests (there is no Python ORT here).
// usage: node ort_run.mjs JOB_DIR        one job
//        node ort_run.mjs --serve        one JOB_DIR per stdin line; answers "ok" or "err <message>" per line
// JOB_DIR/job.json: {"model": path, "inputs": {name: {"dtype": "float32"|"int64", "shape": [..], "file": "x.bin"}},
//                    "outputs": [names]}
// Writes JOB_DIR/out_<name>.bin (little-endian float32 / int64) and JOB_DIR/outputs.json {name: {dtype, shape}}.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import ort from "onnxruntime-node";

const sessions = new Map();

async function runJob(dir) {
  const job = JSON.parse(readFileSync(join(dir, "job.json"), "utf8"));
  let session = sessions.get(job.model);
  if (!session) {
    session = await ort.InferenceSession.create(job.model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    sessions.set(job.model, session);
  }
  const feeds = {};
  for (const [name, spec] of Object.entries(job.inputs)) {
    const buf = readFileSync(join(dir, spec.file));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    const data = spec.dtype === "int64" ? new BigInt64Array(ab) : new Float32Array(ab);
    feeds[name] = new ort.Tensor(spec.dtype, data, spec.shape);
  }
  const res = await session.run(feeds, job.outputs);
  const meta = {};
  for (const name of job.outputs) {
    const t = res[name];
    writeFileSync(join(dir, `out_${name}.bin`), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    meta[name] = { dtype: t.type, shape: t.dims };
  }
  writeFileSync(join(dir, "outputs.json"), JSON.stringify(meta));
}

if (process.argv[2] === "--serve") {
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    try {
      await runJob(line.trim());
      process.stdout.write("ok\n");
    } catch (e) {
      process.stdout.write(`err ${String(e && e.message ? e.message : e).replace(/\n/g, " ")}\n`);
    }
  }
} else {
  await runJob(process.argv[2]);
}
