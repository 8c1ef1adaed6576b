/**
 * A model folder's manifest.json (format "unipic-onnx/1", written by models/toolkit): every
 * dimension, file, prompt template, schedule and default the engine needs. The engine holds no
 * per-model constant; this module reads and validates, naming the file and field at fault.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { AppError, ErrorCode } from "../errors.js";
import { CfgSchedule, isOneOf, oneOf } from "./types.js";

export const MANIFEST_FORMAT = "unipic-onnx/1";

export type Role = "vae_encoder" | "vae_decoder" | "mar_encoder" | "mar_fill" | "mar_decoder" | "llm" | "diffusion_head";
export const ROLES: readonly Role[] = ["vae_encoder", "vae_decoder", "mar_encoder", "mar_fill", "mar_decoder", "llm", "diffusion_head"];

/** Inputs each role must declare: the contract of format unipic-onnx/1 (models/README.md). */
export const ROLE_INPUTS: Record<Role, readonly string[]> = {
  vae_encoder: ["pixels"],
  vae_decoder: ["latent"],
  mar_encoder: ["latents", "vis_idx", "enc_pos"],
  mar_fill: ["x_con", "con"],
  mar_decoder: ["x_enc", "llm_out", "vis_idx", "fill", "dec_pos", "diff_pos", "pred_idx"],
  llm: ["input_ids", "inputs_embeds", "embeds_mask", "attention_mask", "position_ids"],
  diffusion_head: ["x", "t", "c"],
};

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: Array<string | number>;
}

export interface GraphSpec {
  file: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface TableRef {
  offset: number;
  shape: [number, number];
  dtype: "float32";
}

export interface ResolutionSpec {
  size: number;
  grid: [number, number];
  tokens: number;
  imagePromptTokens: number;
  posFile: string;
  encPos: TableRef;
  decPos: TableRef;
  diffPos: TableRef;
}

export interface SamplingDefaults {
  steps: number;
  cfg: number;
  cfgSchedule: CfgSchedule;
  temperature: number;
  diffusionSteps: number;
}

/**
 * FLOPs of one call of each graph as coefficients of its shapes (manifest `flops`, written by
 * models/toolkit/flops.py; the formulas per role are in models/README.md). Absent in older exports.
 */
export type FlopsTable = Partial<Record<Role, Partial<Record<"token" | "pair" | "row" | "llm_token", number>>>>;

export interface Manifest {
  dir: string;
  name: string;
  source: string;
  dims: {
    latentChannels: number;
    bufferTokens: number;
    marWidth: number;
    llmHidden: number;
    llmLayers: number;
    llmKvHeads: number;
    llmHeadDim: number;
    vocabSize: number;
    vaeStride: number;
  };
  vaeScale: number;
  resolutions: ResolutionSpec[];
  defaultResolution: number;
  graphs: Record<Role, GraphSpec>;
  kv: {
    past: (i: number) => [string, string];
    present: (i: number) => [string, string];
    /**
     * Most rows one llm call may take when it has T > 1 new tokens and a non-empty past, or null
     * for any number. GroupQueryAttention graphs say 1 (onnxruntime refuses more; the graph's
     * keys are then left-packed, which the engine's [prompt mask | ones] masks already describe).
     */
    rowsWithPast: number | null;
  };
  tokenizer: { file: string; configFile: string | null; eosId: number; padId: number; imageTokenId: number };
  prompts: {
    userPrefix: string;
    assistantPrefix: string;
    imageToken: string;
    t2iPositive: string;
    t2iNegative: string;
    editPositive: string;
    editNegative: string;
    understand: string;
  };
  diffusion: { T: number; maxBeta: number; cosineS: number };
  sampling: SamplingDefaults;
  /** Overrides of `sampling` for edit jobs (edit_sampling_defaults); {} when the manifest has none. */
  editSampling: Partial<SamplingDefaults>;
  maxNewTokens: number;
  preview: { weight: number[][]; bias: number[] };
  flops: FlopsTable | null;
}

type Json = Record<string, unknown>;

class Reader {
  constructor(readonly file: string) {}

  fail(field: string, expected: string, got: unknown): never {
    const shown = typeof got === "string" ? JSON.stringify(got).slice(0, 60) : got === undefined ? "nothing" : JSON.stringify(got)?.slice(0, 60);
    throw new AppError(ErrorCode.MODEL_INVALID, `${this.file}: ${field}: expected ${expected}, got ${shown}`, { field, expected, got: String(shown) });
  }

  obj(v: unknown, field: string): Json {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(field, "an object", v);
    return v as Json;
  }

  num(v: unknown, field: string, opts: { int?: boolean; min?: number } = {}): number {
    if (typeof v !== "number" || !Number.isFinite(v) || (opts.int && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
      this.fail(field, `${opts.int ? "an integer" : "a number"}${opts.min !== undefined ? ` >= ${opts.min}` : ""}`, v);
    }
    return v;
  }

  str(v: unknown, field: string): string {
    if (typeof v !== "string" || v.length === 0) this.fail(field, "a non-empty string", v);
    return v;
  }

  arr(v: unknown, field: string): unknown[] {
    if (!Array.isArray(v)) this.fail(field, "an array", v);
    return v;
  }
}

function readTable(r: Reader, v: unknown, field: string): TableRef {
  const o = r.obj(v, field);
  const shape = r.arr(o.shape, `${field}.shape`).map((d, i) => r.num(d, `${field}.shape[${i}]`, { int: true, min: 1 }));
  if (shape.length !== 2) r.fail(`${field}.shape`, "two dimensions", shape);
  if (o.dtype !== "float32") r.fail(`${field}.dtype`, '"float32"', o.dtype);
  return { offset: r.num(o.offset, `${field}.offset`, { int: true, min: 0 }), shape: shape as [number, number], dtype: "float32" };
}

function readGraph(r: Reader, role: Role, v: unknown): GraphSpec {
  const field = `graphs.${role}`;
  const o = r.obj(v, field);
  const specs = (list: unknown, f: string): TensorSpec[] =>
    r.arr(list, f).map((t, i) => {
      const s = r.obj(t, `${f}[${i}]`);
      return { name: r.str(s.name, `${f}[${i}].name`), dtype: r.str(s.dtype, `${f}[${i}].dtype`), shape: r.arr(s.shape, `${f}[${i}].shape`) as Array<string | number> };
    });
  const graph = { file: r.str(o.file, `${field}.file`), inputs: specs(o.inputs, `${field}.inputs`), outputs: specs(o.outputs, `${field}.outputs`) };
  for (const name of ROLE_INPUTS[role]) {
    if (!graph.inputs.some((i) => i.name === name)) r.fail(`${field}.inputs`, `an input named "${name}"`, graph.inputs.map((i) => i.name).join(", "));
  }
  return graph;
}

const SAMPLING_KEYS: ReadonlyArray<keyof SamplingDefaults> = ["steps", "cfg", "cfgSchedule", "temperature", "diffusionSteps"];

function samplingValue<K extends keyof SamplingDefaults>(r: Reader, key: K, v: unknown, field: string): SamplingDefaults[K] {
  const f = `${field}.${key}`;
  if (key === "cfgSchedule") {
    if (!isOneOf(CfgSchedule, v)) r.fail(f, oneOf(CfgSchedule), v);
    return v as SamplingDefaults[K];
  }
  const int = key === "steps" || key === "diffusionSteps";
  return r.num(v, f, int ? { int: true, min: 1 } : {}) as SamplingDefaults[K];
}

/** sampling_defaults: every key required (other keys are ignored, as they always were). */
function readSampling(r: Reader, v: unknown, field: string): SamplingDefaults {
  const o = r.obj(v, field);
  return Object.fromEntries(SAMPLING_KEYS.map((k) => [k, samplingValue(r, k, o[k], field)])) as unknown as SamplingDefaults;
}

/** An override object: any subset of the keys. An unknown key fails, so a typo such as
 * "cfg_schedule" cannot silently leave the default in place. */
function readSamplingOverrides(r: Reader, v: unknown, field: string): Partial<SamplingDefaults> {
  const o = r.obj(v, field);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) {
    if (!(SAMPLING_KEYS as readonly string[]).includes(k)) r.fail(`${field}.${k}`, `no such key (one of ${SAMPLING_KEYS.join(", ")})`, x);
    out[k] = samplingValue(r, k as keyof SamplingDefaults, x, field);
  }
  return out as Partial<SamplingDefaults>;
}

/** Parses and validates manifest.json text. `dir` is the model folder (for file paths). */
export function parseManifest(text: string, dir: string): Manifest {
  const file = path.join(dir, "manifest.json");
  const r = new Reader(file);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AppError(ErrorCode.MODEL_INVALID, `${file}: not valid JSON (${(error as Error).message})`, { cause: error });
  }
  const m = r.obj(raw, "(root)");
  if (m.format !== MANIFEST_FORMAT) r.fail("format", `"${MANIFEST_FORMAT}"`, m.format);
  const dims = r.obj(m.dims, "dims");
  const int = (o: Json, key: string, prefix: string): number => r.num(o[key], `${prefix}.${key}`, { int: true, min: 1 });
  const vae = r.obj(m.vae, "vae");
  const graphsRaw = r.obj(m.graphs, "graphs");
  const graphs = Object.fromEntries(ROLES.map((role) => [role, readGraph(r, role, graphsRaw[role])])) as Record<Role, GraphSpec>;
  const resolutions = r.arr(m.resolutions, "resolutions").map((v, i): ResolutionSpec => {
    const f = `resolutions[${i}]`;
    const o = r.obj(v, f);
    const grid = r.arr(o.grid, `${f}.grid`).map((d, j) => r.num(d, `${f}.grid[${j}]`, { int: true, min: 1 })) as [number, number];
    const pos = r.obj(o.pos_tables, `${f}.pos_tables`);
    const spec: ResolutionSpec = {
      size: int(o, "size", f),
      grid,
      tokens: int(o, "tokens", f),
      imagePromptTokens: int(o, "image_prompt_tokens", f),
      posFile: r.str(pos.file, `${f}.pos_tables.file`),
      encPos: readTable(r, pos.enc_pos, `${f}.pos_tables.enc_pos`),
      decPos: readTable(r, pos.dec_pos, `${f}.pos_tables.dec_pos`),
      diffPos: readTable(r, pos.diff_pos, `${f}.pos_tables.diff_pos`),
    };
    if (grid[0] * grid[1] !== spec.tokens) r.fail(`${f}.tokens`, `grid[0]*grid[1] = ${grid[0] * grid[1]}`, spec.tokens);
    return spec;
  });
  if (resolutions.length === 0) r.fail("resolutions", "at least one resolution", []);
  const kv = r.obj(m.kv_cache, "kv_cache");
  const pastPattern = r.str(kv.past, "kv_cache.past").split(",").map((s) => s.trim());
  const presentPattern = r.str(kv.present, "kv_cache.present").split(",").map((s) => s.trim());
  if (pastPattern.length !== 2 || presentPattern.length !== 2) r.fail("kv_cache.past", '"past_key_{i}, past_value_{i}"', kv.past);
  const fmt = (p: string[], i: number): [string, string] => [p[0]!.replace("{i}", String(i)), p[1]!.replace("{i}", String(i))];
  const rowsWithPast = kv.rows_with_past === undefined ? null : r.num(kv.rows_with_past, "kv_cache.rows_with_past", { int: true, min: 1 });
  const flops = m.flops === undefined ? null : readFlops(r, m.flops);
  const tok = r.obj(m.tokenizer, "tokenizer");
  const prompts = r.obj(m.prompts, "prompts");
  const diffusion = r.obj(m.diffusion, "diffusion");
  if (diffusion.noise_schedule !== "cosine") r.fail("diffusion.noise_schedule", '"cosine"', diffusion.noise_schedule);
  const sampling = readSampling(r, m.sampling_defaults, "sampling_defaults");
  // Optional: editing may need other defaults than generation (e.g. a lower cfg, since guidance
  // away from "Repeat this image." can destroy the parts the instruction leaves alone).
  const editSampling = m.edit_sampling_defaults === undefined ? {} : readSamplingOverrides(r, m.edit_sampling_defaults, "edit_sampling_defaults");
  const preview = r.obj(m.preview, "preview");
  const C = int(dims, "latent_channels", "dims");
  const weight = r.arr(preview.weight, "preview.weight").map((row, i) => r.arr(row, `preview.weight[${i}]`).map((x, j) => r.num(x, `preview.weight[${i}][${j}]`)));
  if (weight.length !== C || weight.some((row) => row.length !== 3)) r.fail("preview.weight", `${C} rows of 3`, `${weight.length} rows`);
  const bias = r.arr(preview.bias, "preview.bias").map((x, i) => r.num(x, `preview.bias[${i}]`));
  const und = m.understanding_defaults === undefined ? {} : r.obj(m.understanding_defaults, "understanding_defaults");
  const defaultResolution = r.num(m.default_resolution, "default_resolution", { int: true, min: 1 });
  if (!resolutions.some((res) => res.size === defaultResolution)) r.fail("default_resolution", `one of ${resolutions.map((x) => x.size).join(", ")}`, defaultResolution);
  return {
    dir,
    name: r.str(m.name, "name"),
    source: typeof m.source === "string" ? m.source : "",
    dims: {
      latentChannels: C,
      bufferTokens: int(dims, "buffer_tokens", "dims"),
      marWidth: int(dims, "mar_width", "dims"),
      llmHidden: int(dims, "llm_hidden", "dims"),
      llmLayers: int(dims, "llm_layers", "dims"),
      llmKvHeads: int(dims, "llm_kv_heads", "dims"),
      llmHeadDim: int(dims, "llm_head_dim", "dims"),
      vocabSize: int(dims, "vocab_size", "dims"),
      vaeStride: int(dims, "vae_stride", "dims"),
    },
    vaeScale: r.num(vae.scale, "vae.scale"),
    resolutions,
    defaultResolution,
    graphs,
    kv: { past: (i) => fmt(pastPattern, i), present: (i) => fmt(presentPattern, i), rowsWithPast },
    tokenizer: {
      file: r.str(tok.file, "tokenizer.file"),
      configFile: typeof tok.config_file === "string" ? tok.config_file : null,
      eosId: r.num(tok.eos_id, "tokenizer.eos_id", { int: true, min: 0 }),
      padId: r.num(tok.pad_id, "tokenizer.pad_id", { int: true, min: 0 }),
      imageTokenId: r.num(tok.image_token_id, "tokenizer.image_token_id", { int: true, min: 0 }),
    },
    prompts: {
      userPrefix: r.str(prompts.user_prefix, "prompts.user_prefix"),
      assistantPrefix: r.str(prompts.assistant_prefix, "prompts.assistant_prefix"),
      imageToken: r.str(prompts.image_token, "prompts.image_token"),
      t2iPositive: r.str(prompts.t2i_positive, "prompts.t2i_positive"),
      t2iNegative: r.str(prompts.t2i_negative, "prompts.t2i_negative"),
      editPositive: r.str(prompts.edit_positive, "prompts.edit_positive"),
      editNegative: r.str(prompts.edit_negative, "prompts.edit_negative"),
      understand: r.str(prompts.understand, "prompts.understand"),
    },
    diffusion: {
      T: r.num(diffusion.T, "diffusion.T", { int: true, min: 2 }),
      maxBeta: r.num(diffusion.max_beta, "diffusion.max_beta"),
      cosineS: diffusion.cosine_s === undefined ? 0.008 : r.num(diffusion.cosine_s, "diffusion.cosine_s"),
    },
    sampling,
    editSampling,
    maxNewTokens: und.max_new_tokens === undefined ? 64 : r.num(und.max_new_tokens, "understanding_defaults.max_new_tokens", { int: true, min: 1 }),
    preview: { weight, bias },
    flops,
  };
}

function readFlops(r: Reader, v: unknown): FlopsTable {
  const o = r.obj(v, "flops");
  const table: FlopsTable = {};
  for (const [role, coeffs] of Object.entries(o)) {
    if (!(ROLES as readonly string[]).includes(role)) r.fail(`flops.${role}`, `a role (${ROLES.join(", ")})`, role);
    const c = r.obj(coeffs, `flops.${role}`);
    table[role as Role] = Object.fromEntries(Object.entries(c).map(([k, x]) => [k, r.num(x, `flops.${role}.${k}`, { min: 0 })]));
  }
  return table;
}

/** Reads `dir/manifest.json`; MODEL_INVALID with the path when it is missing or invalid. */
export async function loadManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new AppError(ErrorCode.MODEL_INVALID, `${file}: cannot read the model manifest (${(error as NodeJS.ErrnoException).code ?? "error"}); set MODEL_DIR to a model folder`, { cause: error });
  }
  return parseManifest(text, dir);
}
