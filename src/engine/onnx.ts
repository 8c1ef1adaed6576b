/**
 * The only import of onnxruntime-node. Everything else in the engine sees plain typed arrays
 * (`Tensor`), so the sampling code is testable with fake graphs and knows nothing of ORT.
 * A failed run is wrapped with the graph's name and each input's dtype and dims.
 */
import * as ort from "onnxruntime-node";
import { AppError, ErrorCode } from "../errors.js";
import { matmulModel } from "./matmul-graph.js";
import type { Provider } from "./types.js";

export type TensorData = Float32Array | BigInt64Array;

export interface Tensor {
  data: TensorData;
  dims: number[];
}

export type Feeds = Record<string, Tensor>;

/** One loaded graph: `run` maps named inputs to named outputs. */
export interface Graph {
  readonly name: string;
  run(feeds: Feeds, outputs?: readonly string[]): Promise<Record<string, Tensor>>;
  /**
   * Re-runs the smallest inputs that once succeeded: false means the session itself is broken
   * (fatal), true that a failure was the job's own (recoverable).
   */
  probe(): Promise<boolean>;
  release(): Promise<void>;
}


export interface SessionOptions {
  provider: Provider;
  /** Intra-op threads; 0 lets onnxruntime choose. */
  threads: number;
}

export function f32(data: Float32Array, dims: number[]): Tensor {
  return { data, dims };
}

export function i64(values: ArrayLike<number> | BigInt64Array, dims: number[]): Tensor {
  if (values instanceof BigInt64Array) return { data: values, dims };
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return { data, dims };
}

function describe(feeds: Feeds): string {
  return Object.entries(feeds)
    .map(([k, t]) => `${k}: ${t.data instanceof Float32Array ? "float32" : "int64"}[${t.dims.join(",")}]`)
    .join("; ");
}

function toOrt(t: Tensor): ort.Tensor {
  return t.data instanceof Float32Array ? new ort.Tensor("float32", t.data, t.dims) : new ort.Tensor("int64", t.data, t.dims);
}

function fromOrt(t: ort.Tensor): Tensor {
  const data = t.data;
  if (!(data instanceof Float32Array) && !(data instanceof BigInt64Array)) {
    throw new AppError(ErrorCode.MODEL_INVALID, `unsupported output type ${t.type}`);
  }
  return { data, dims: [...t.dims] };
}

/** Does this provider work here? webgpu needs Vulkan and a GPU adapter; probing it logs ORT noise. */
export async function probeProvider(provider: Provider, modelBytes: Uint8Array): Promise<string | null> {
  if (provider === "cpu") return null;
  try {
    const session = await ort.InferenceSession.create(modelBytes, { executionProviders: [provider] });
    await session.release();
    return null;
  } catch (error) {
    return (error as Error).message.split("\n")[0] ?? String(error);
  }
}

/** Loads one ONNX file as a Graph. MODEL_INVALID names the file when it cannot be loaded. */
export async function loadGraph(name: string, file: string, options: SessionOptions): Promise<Graph> {
  let session: ort.InferenceSession;
  try {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: options.provider === "cpu" ? ["cpu"] : [options.provider, "cpu"],
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    };
    // onnxruntime-node rejects an explicit undefined: leave the key out to get its default.
    if (options.threads > 0) sessionOptions.intraOpNumThreads = options.threads;
    session = await ort.InferenceSession.create(file, sessionOptions);
  } catch (error) {
    throw new AppError(ErrorCode.MODEL_INVALID, `${file}: cannot load the ${name} graph: ${(error as Error).message}`, { cause: error });
  }
  let known: { feeds: Feeds; bytes: number } | undefined;
  const run = async (feeds: Feeds, outputs?: readonly string[]): Promise<Record<string, Tensor>> => {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(t);
    let result: ort.InferenceSession.ReturnType;
    try {
      result = outputs === undefined ? await session.run(ortFeeds) : await session.run(ortFeeds, outputs as string[]);
    } catch (error) {
      throw new AppError(ErrorCode.JOB_FAILED, `${name}: session.run failed with inputs {${describe(feeds)}}: ${(error as Error).message}`, { cause: error });
    }
    const bytes = Object.values(feeds).reduce((sum, t) => sum + t.data.byteLength, 0);
    if (known === undefined || bytes < known.bytes) known = { feeds, bytes };
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(result)) out[k] = fromOrt(t);
    return out;
  };
  return {
    name,
    run,
    async probe() {
      if (known === undefined) return true; // never ran: nothing to compare with
      try {
        await session.run(Object.fromEntries(Object.entries(known.feeds).map(([k, t]) => [k, toOrt(t)])));
        return true;
      } catch {
        return false;
      }
    },
    release: () => session.release(),
  };
}

/**
 * onnxruntime's own FLOP/s on an fp32 [n,n] @ [n,n] MatMul with the engine's session options: the
 * median of `runs` timed runs after two warm-ups (the machine's reachable rate, for the bench).
 */
export async function matmulFlopsPerSecond(options: SessionOptions, n = 1024, runs = 15): Promise<number> {
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: options.provider === "cpu" ? ["cpu"] : [options.provider, "cpu"],
    interOpNumThreads: 1,
  };
  if (options.threads > 0) sessionOptions.intraOpNumThreads = options.threads;
  const session = await ort.InferenceSession.create(matmulModel(n), sessionOptions);
  try {
    const a = new ort.Tensor("float32", Float32Array.from({ length: n * n }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5), [n, n]);
    const b = new ort.Tensor("float32", Float32Array.from({ length: n * n }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5), [n, n]);
    const times: number[] = [];
    for (let i = 0; i < runs + 2; i++) {
      const t0 = performance.now();
      await session.run({ A: a, B: b });
      if (i >= 2) times.push(performance.now() - t0);
    }
    times.sort((x, y) => x - y);
    return (2 * n * n * n) / (times[Math.floor(times.length / 2)]! / 1000);
  } finally {
    await session.release();
  }
}
