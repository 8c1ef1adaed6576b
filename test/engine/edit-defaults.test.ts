/**
 * Every engine client (in-process Engine, a worker-thread RemoteEngine, the pool of workers) resolves an edit
 * job's parameters from edit_sampling_defaults and a generate job's from sampling_defaults: the
 * committed unipic-tiny graphs behind a manifest that adds edit overrides.
 */
import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { EnginePool } from "../../src/engine/pool.js";
import { RemoteEngine } from "../../src/engine/remote.js";
import type { EngineClient, ImageParams, JobHandle } from "../../src/engine/types.js";
import { collect } from "../helpers/collect.js";
import { MODEL_DIR, edit, gen } from "./fixtures.js";

const FAST = { steps: 2, diffusionSteps: 2, seed: 1, preview: "none" as const };
let dir: string;
const clients: Array<[string, EngineClient]> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "unipic-edit-defaults-"));
  for (const f of await readdir(MODEL_DIR)) if (f !== "manifest.json") await symlink(path.join(MODEL_DIR, f), path.join(dir, f));
  const m = JSON.parse(await readFile(path.join(MODEL_DIR, "manifest.json"), "utf8")) as Record<string, unknown>;
  await writeFile(path.join(dir, "manifest.json"), JSON.stringify({ ...m, sampling_defaults: { ...(m.sampling_defaults as object), cfg: 3, temperature: 1 }, edit_sampling_defaults: { cfg: 1, temperature: 0.5 } }));
  const options = { modelDir: dir, provider: "cpu" as const, threads: 1, maxQueue: 4, maxBatch: 2 };
  // The pool resolves before handing a job to a worker, so the worker client is checked alone too.
  clients.push(["engine", await Engine.load(options)], ["remote", await RemoteEngine.load(options)], ["pool", await EnginePool.load(options, 2)]);
});
afterAll(async () => {
  for (const [, c] of clients) await c.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function params(h: JobHandle): Promise<ImageParams> {
  const last = (await collect(h.events)).at(-1);
  if (last?.type !== "done") throw new Error("no done event");
  return last.params as ImageParams;
}

const gray = { rgb: new Uint8Array(64 * 64 * 3).fill(128), width: 64, height: 64 };

describe.each([["engine"], ["remote"], ["pool"]])("%s", (name) => {
  const client = (): EngineClient => clients.find(([n]) => n === name)![1];

  it("gives edits the edit defaults and generation the sampling defaults", async () => {
    expect(await params(client().submit(edit(gray, "make it red", FAST)))).toMatchObject({ cfg: 1, temperature: 0.5 });
    expect(await params(client().submit(gen("a red circle", FAST)))).toMatchObject({ cfg: 3, temperature: 1 });
  });

  it("lets an edit's explicit params win", async () => {
    expect(await params(client().submit(edit(gray, "make it red", { ...FAST, cfg: 2, temperature: 0.9 })))).toMatchObject({ cfg: 2, temperature: 0.9 });
  });
});
