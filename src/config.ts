/**
 * Configuration from environment variables, validated once at start-up. Every limit the API
 * enforces lives here, so HTTP and WebSocket paths read the same numbers. A bad value fails
 * start-up with the variable's name, what was expected and what was given.
 */
import path from "node:path";
import { AppError } from "./errors.js";

export interface Limits {
  /** Characters in one message or prompt. */
  maxPromptChars: number;
  /** `first` / `last` of any connection. */
  maxPageSize: number;
  /** Bytes of one uploaded image (and of any HTTP request body). */
  maxUploadBytes: number;
  /** width * height of an uploaded image, checked from the header before decoding. */
  maxImagePixels: number;
  /** Nesting depth of a GraphQL operation. */
  maxQueryDepth: number;
  /** Estimated cost of a GraphQL operation (1 per field, times page size for lists). */
  maxQueryComplexity: number;
  /** Images attached to one message. */
  maxImagesPerMessage: number;
  /** Jobs waiting in the inference queue. */
  maxQueueLength: number;
}

/** Per-user allowances (admins are exempt); 0 turns a limit off. */
export interface Quotas {
  /** Model replies a user may start in any 60 seconds (USER_TURNS_PER_MINUTE). */
  turnsPerMinute: number;
  /** A user's replies QUEUED or RUNNING at once (USER_QUEUED_TURNS). */
  queuedTurns: number;
  /** Bytes of images a user holds: uploads and the images on their turns (USER_STORED_BYTES). */
  storedBytes: number;
}

export const DEFAULT_QUOTAS: Quotas = {
  // Generous for a person or a script at a normal pace (an OpenAI call with n=4 is 4 turns),
  // small enough that one key cannot take the engine for itself.
  turnsPerMinute: 60,
  // An eighth of the default queue: one user cannot fill MAX_QUEUE_LENGTH and lock others out.
  queuedTurns: 32,
  // Off: how much disk each user may have is the operator's call.
  storedBytes: 0,
};

/** Which browser origins may call the API (CORS), and open WebSockets. */
export type CorsOrigins = { kind: "same-origin" } | { kind: "any" } | { kind: "list"; origins: string[] };

export interface Config {
  port: number;
  host: string;
  /** Embedded PGlite data lives in `${dataDir}/pglite`. */
  dataDir: string;
  /** Set: node-postgres against that server. Unset: embedded PGlite. */
  databaseUrl?: string;
  /** The model folder holding manifest.json. */
  modelDir: string;
  /** onnxruntime execution provider. */
  engineProvider: "cpu" | "webgpu";
  /** onnxruntime intra-op threads (0 = onnxruntime's default). */
  engineThreads: number;
  /** Run turns on the engine (ENGINE=off serves history and queues turns without running them). */
  engineEnabled: boolean;
  /** Jobs decoded together at most (continuous batching). */
  engineBatch: number;
  /** Engine worker threads, each with the model loaded (ENGINE_WORKERS). */
  engineWorkers: number;
  /** Hide internals (messages of INTERNAL errors, stack traces) from clients. */
  production: boolean;
  /** Echo logs (the API key line is always printed). */
  logLevel: "silent" | "info" | "debug";
  limits: Limits;
  quotas: Quotas;
  /** CORS_ORIGINS: unset is same-origin only. */
  cors: CorsOrigins;
  /**
   * Who may read /metrics (METRICS_ACCESS): `admin`, a bearer admin API key or METRICS_TOKEN;
   * `open`, anyone.
   */
  metricsAccess: "admin" | "open";
  /** METRICS_TOKEN: a bearer secret for a scraper (compared in constant time); null when unset. */
  metricsToken: string | null;
  /**
   * REDIS_URL: set, this process is a node of a scaled-out deployment (jobs through BullMQ, turn
   * events through Redis pub/sub; src/redis); DATABASE_URL is then required. Unset: one process.
   */
  redisUrl?: string;
  /** REDIS_PREFIX: namespaces every Redis key and channel, so deployments can share a Redis. */
  redisPrefix: string;
}

export const DEFAULT_LIMITS: Limits = {
  maxPromptChars: 2000,
  maxPageSize: 100,
  maxUploadBytes: 10 * 1024 * 1024,
  maxImagePixels: 4096 * 4096,
  maxQueryDepth: 10,
  maxQueryComplexity: 2000,
  maxImagesPerMessage: 4,
  maxQueueLength: 256,
};

type Env = Record<string, string | undefined>;

function intFrom(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw AppError.badInput(name, `an integer in [${min}, ${max}]`, raw);
  }
  return value;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw AppError.badInput(name, `one of ${allowed.join(", ")}`, raw);
  }
  return raw as T;
}

/** CORS_ORIGINS: unset or empty is same-origin; `*` any origin; else a comma-separated list of origins. */
function corsFrom(env: Env): CorsOrigins {
  const raw = env.CORS_ORIGINS?.trim();
  if (raw === undefined || raw === "") return { kind: "same-origin" };
  if (raw === "*") return { kind: "any" };
  const expected = "*, or comma-separated origins such as https://app.example.com,http://localhost:5173";
  const origins = raw.split(",").map((o) => o.trim()).filter((o) => o !== "");
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    // An origin is scheme://host[:port] and nothing more (browsers send exactly that).
    if (parsed === null || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) throw AppError.badInput("CORS_ORIGINS", expected, origin);
  }
  if (origins.length === 0) throw AppError.badInput("CORS_ORIGINS", expected, raw);
  return { kind: "list", origins };
}

/** METRICS_TOKEN: at least 16 characters of printable ASCII without spaces; its value is never echoed. */
function metricsTokenFrom(env: Env): string | null {
  const raw = env.METRICS_TOKEN;
  if (raw === undefined || raw === "") return null;
  if (raw.length < 16 || !/^[\x21-\x7e]+$/.test(raw)) {
    throw AppError.badInput("METRICS_TOKEN", "at least 16 printable characters without spaces", `${raw.length} characters${/^[\x21-\x7e]*$/.test(raw) ? "" : " with spaces or non-ASCII"}`);
  }
  return raw;
}

/** Reads the configuration; throws an AppError (BAD_INPUT) naming the bad variable. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const limits: Limits = {
    maxPromptChars: intFrom(env, "MAX_PROMPT_CHARS", DEFAULT_LIMITS.maxPromptChars, 1, 1_000_000),
    maxPageSize: intFrom(env, "MAX_PAGE_SIZE", DEFAULT_LIMITS.maxPageSize, 1, 10_000),
    maxUploadBytes: intFrom(env, "MAX_UPLOAD_BYTES", DEFAULT_LIMITS.maxUploadBytes, 1024, 1 << 30),
    maxImagePixels: intFrom(env, "MAX_IMAGE_PIXELS", DEFAULT_LIMITS.maxImagePixels, 64, 1 << 28),
    maxQueryDepth: intFrom(env, "MAX_QUERY_DEPTH", DEFAULT_LIMITS.maxQueryDepth, 2, 100),
    maxQueryComplexity: intFrom(env, "MAX_QUERY_COMPLEXITY", DEFAULT_LIMITS.maxQueryComplexity, 10, 1_000_000),
    maxImagesPerMessage: intFrom(env, "MAX_IMAGES_PER_MESSAGE", DEFAULT_LIMITS.maxImagesPerMessage, 0, 64),
    maxQueueLength: intFrom(env, "MAX_QUEUE_LENGTH", DEFAULT_LIMITS.maxQueueLength, 1, 100_000),
  };
  const quotas: Quotas = {
    turnsPerMinute: intFrom(env, "USER_TURNS_PER_MINUTE", DEFAULT_QUOTAS.turnsPerMinute, 0, 1_000_000),
    queuedTurns: intFrom(env, "USER_QUEUED_TURNS", DEFAULT_QUOTAS.queuedTurns, 0, 1_000_000),
    storedBytes: intFrom(env, "USER_STORED_BYTES", DEFAULT_QUOTAS.storedBytes, 0, Number.MAX_SAFE_INTEGER),
  };
  const databaseUrl = env.DATABASE_URL === undefined || env.DATABASE_URL === "" ? undefined : env.DATABASE_URL;
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw AppError.badInput("DATABASE_URL", "a postgres:// or postgresql:// URL", databaseUrl.split("@").pop());
  }
  const redisUrl = env.REDIS_URL === undefined || env.REDIS_URL === "" ? undefined : env.REDIS_URL;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw AppError.badInput("REDIS_URL", "a redis:// or rediss:// URL", redisUrl.split("@").pop());
  }
  if (redisUrl !== undefined && databaseUrl === undefined) {
    // Every node reads and writes the same turns and images: embedded PGlite is one process's.
    throw AppError.badInput("DATABASE_URL", "a postgres:// URL shared by every node (REDIS_URL is set)", "unset");
  }
  const redisPrefix = env.REDIS_PREFIX === undefined || env.REDIS_PREFIX === "" ? "unipic" : env.REDIS_PREFIX;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(redisPrefix)) throw AppError.badInput("REDIS_PREFIX", "1-64 letters, digits, '_', '.' or '-'", redisPrefix);
  return {
    port: intFrom(env, "PORT", 4000, 0, 65535),
    host: env.HOST && env.HOST !== "" ? env.HOST : "0.0.0.0",
    dataDir: path.resolve(cwd, env.DATA_DIR && env.DATA_DIR !== "" ? env.DATA_DIR : "data"),
    databaseUrl,
    modelDir: path.resolve(cwd, env.MODEL_DIR && env.MODEL_DIR !== "" ? env.MODEL_DIR : "models/unipic-tiny"),
    engineProvider: oneOf(env, "ENGINE_PROVIDER", ["cpu", "webgpu"] as const, "cpu"),
    // 1 by default: the tiny model's matrices are too small to split, and a second intra-op thread
    // cost more than it gave (generate 271 ms at 1 thread, 712 at 2, 407 at ORT's default, on the
    // 2-core CI machine); it also leaves a core to the server. Raise it for large models.
    engineThreads: intFrom(env, "ENGINE_THREADS", 1, 0, 256),
    engineEnabled: oneOf(env, "ENGINE", ["on", "off"] as const, "on") === "on",
    engineBatch: intFrom(env, "ENGINE_BATCH", 8, 1, 256),
    // 1 by default: on the 2-core reference machine the server needs the other core. Give a worker
    // per spare core on bigger machines (each holds the model: ~30 MB for unipic-tiny).
    engineWorkers: intFrom(env, "ENGINE_WORKERS", 1, 1, 64),
    production: env.NODE_ENV === "production",
    logLevel: oneOf(env, "LOG_LEVEL", ["silent", "info", "debug"] as const, "info"),
    limits,
    quotas,
    cors: corsFrom(env),
    metricsAccess: oneOf(env, "METRICS_ACCESS", ["admin", "open"] as const, "admin"),
    metricsToken: metricsTokenFrom(env),
    redisUrl,
    redisPrefix,
  };
}

/** What an engine (in-process, worker or pool) is loaded with, from the configuration. */
export function engineOptions(config: Config) {
  return {
    modelDir: config.modelDir,
    provider: config.engineProvider,
    threads: config.engineThreads,
    maxQueue: config.limits.maxQueueLength,
    maxBatch: config.engineBatch,
  };
}
