/** Runs the real server and CLI as child processes (what a user runs), for lifecycle tests. */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WAIT_MS } from "./wait.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  wsUrl: string;
  apiKey: string | null;
  stdout: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `src/main.ts` on a free port; resolves once it prints its URL (its ready signal: the
 * database is open and the model loaded). The limit is only for a server that never gets there.
 */
export function spawnServer(env: Record<string, string>, timeoutMs = WAIT_MS): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start in ${timeoutMs} ms; stdout: ${out}; stderr: ${err}`));
    }, timeoutMs);
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const url = /listening on (http:\/\/\S+)\/graphql/.exec(out);
      if (url !== null && out.includes("npx unipic users add")) {
        clearTimeout(timer);
        const key = /^API key: (\S+)$/m.exec(out);
        resolve({ child, url: url[1]!, wsUrl: `${url[1]!.replace("http", "ws")}/graphql`, apiKey: key?.[1] ?? null, stdout: () => out, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** Runs `unipic ARGS` (bin/unipic.js) to completion; killed after `timeoutMs` so no run outlives its test. */
export function runCli(args: string[], env: Record<string, string>, timeoutMs = 2 * WAIT_MS): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ["bin/unipic.js", ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: "silent", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

export interface Worker {
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** `npx unipic worker` (the scaled-out mode), resolved once it says it is ready; its stderr goes to `logFile`. */
export function spawnWorker(env: Record<string, string>, logFile: string): Promise<Worker> {
  const child = spawn(process.execPath, ["bin/unipic.js", "worker"], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stderr!.on("data", (d: Buffer) => appendFileSync(logFile, d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), WAIT_MS);
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("UniPic worker ready")) {
        clearTimeout(timer);
        resolve({ child, exited });
      }
    });
    void exited.then((code) => reject(new Error(`worker exited with ${code}: ${out}`)));
  });
}
