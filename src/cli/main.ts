/**
 * `unipic` command line. Users: `users add NAME` prints the new key alone on the last line of
 * stdout; it goes through the running server's admin socket when one answers (embedded PGlite
 * can be opened by one process only), and opens the database itself otherwise.
 */
import "reflect-metadata";
import net from "node:net";
import { adminSocketPath, runAdminRequest, type AdminRequest } from "../api/admin.js";
import { loadConfig, type Config } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import { createStore, openDatabase } from "../store/index.js";

const USAGE = `usage: unipic <command>
  serve                                   start the server (same as npm start)
  worker                                  an engine worker of a scaled-out deployment (REDIS_URL, DATABASE_URL; README "Scaling out")
  users add NAME                          create a user; prints its API key on the last line
  keys revoke KEY                         revoke an API key
  generate PROMPT -o out.png              text to image  [--seed --steps --cfg --cfg-schedule --temperature --diffusion-steps --resolution]
  edit IN.png INSTRUCTION -o out.png      edit an image  [same options]
  understand IN.png QUESTION              answer a question about an image  [--max-tokens]
  eval [--cases FILE] [--n 50] [--questions N] [--edits N] [--repeats N] [--seeds 4] [--json]  ShapesEval by this engine (questions, edits and "Repeat this image." cases: --n each unless given)
  eval --geneval METADATA.jsonl --out DIR [--per-prompt 4]  generations in GenEval's layout
  bench [--json] [--quick] [--scale|--soak] benchmarks, one JSON object a line (--scale: Redis mode against one process)
environment: MODEL_DIR, ENGINE_PROVIDER, ENGINE_THREADS, DATA_DIR, DATABASE_URL, REDIS_URL (see README.md)`;

/** Sends one request to a running server's admin socket; null when no server answers there. */
function viaSocket(socketPath: string, request: AdminRequest): Promise<Record<string, unknown> | null> {
  return new Promise((resolve, reject) => {
    const conn = net.createConnection(socketPath);
    let buffer = "";
    conn.setEncoding("utf8");
    conn.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT" || error.code === "ECONNREFUSED") resolve(null);
      else reject(error);
    });
    conn.on("data", (chunk: string) => (buffer += chunk));
    conn.on("end", () => {
      try {
        resolve(JSON.parse(buffer) as Record<string, unknown>);
      } catch {
        reject(new AppError(ErrorCode.UNAVAILABLE, `the server at ${socketPath} gave an unreadable answer`));
      }
    });
    conn.write(`${JSON.stringify(request)}\n`);
  });
}

async function admin(config: Config, request: AdminRequest): Promise<Record<string, unknown>> {
  const answer = await viaSocket(adminSocketPath(config.dataDir), request);
  if (answer !== null) {
    if (answer.ok !== true) throw new AppError((answer.code as ErrorCode) ?? ErrorCode.INTERNAL, String(answer.message));
    return answer;
  }
  // No server is running: open the database directly.
  const database = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    return await runAdminRequest(createStore(database), request);
  } finally {
    await database.close();
  }
}

/** `unipic --help`, `unipic help` or `unipic CMD --help`: the usage (of CMD's lines when it has
 * some) on stdout, exit 0, before any option is parsed (so `--help` is never read as `--help VALUE`). */
function help(argv: string[]): number | null {
  if (!argv.some((a) => a === "--help" || a === "-h") && argv[0] !== "help") return null;
  const command = argv[0] === "help" ? argv[1] : argv[0];
  const lines = USAGE.split("\n");
  const own = lines.filter((l) => command !== undefined && !command.startsWith("-") && l.trimStart().startsWith(`${command} `));
  console.log(own.length > 0 ? [`usage: unipic ${command}`, ...own, lines[lines.length - 1]].join("\n") : USAGE);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const helped = help(argv);
  if (helped !== null) return helped;
  const [command, sub, ...rest] = argv;
  if (command === "serve") {
    await import("../main.js");
    return -1; // keeps running
  }
  if (command === "worker") {
    await import("../worker.js");
    return -1; // keeps running
  }
  const config = loadConfig();
  if (command === "generate" || command === "edit" || command === "understand") {
    const { runEngineCommand } = await import("./engine.js");
    return runEngineCommand(command, argv.slice(1), config);
  }
  if (command === "eval") return (await import("./eval.js")).runEval(argv.slice(1), config);
  if (command === "bench") return (await import("./bench.js")).runBench(argv.slice(1), config);
  if (command === "users" && sub === "add" && rest.length >= 1) {
    const result = await admin(config, { op: "users.add", name: rest.join(" ") });
    const user = result.user as { id: string; name: string };
    console.log(`created user ${user.name} (${user.id}); its API key, shown only now:`);
    console.log(String(result.apiKey));
    return 0;
  }
  if (command === "keys" && sub === "revoke" && rest.length === 1) {
    const result = await admin(config, { op: "keys.revoke", key: rest[0]! });
    console.log(result.revoked === true ? "revoked" : "no such key");
    return result.revoked === true ? 0 : 1;
  }
  console.error(USAGE);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(`unipic: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
