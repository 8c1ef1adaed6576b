/**
 * Shared by the web client tests: a fresh Vite build when src/web changed, headless Debian
 * Chromium through playwright-core (skipped with a reason when it is not installed), screenshots
 * under test-results/web, and axe-core injected from npm.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { render, type SceneObject } from "../../src/shapes/world.js";
import { SLOWDOWN, WAIT_MS } from "../helpers/wait.js";

const require = createRequire(import.meta.url);
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SHOTS = path.join(ROOT, "test-results", "web");
export const CHROMIUM = "/usr/bin/chromium";
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SKIP_REASON = `skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`;

function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(full) : statSync(full).mtimeMs);
  }
  return latest;
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Runs `vite build` unless dist/web is newer than src/web and vite.config.ts. Test files run in
 * parallel workers, so a lock directory makes one build while the others wait for it.
 */
export function ensureWebBuild(): void {
  const index = path.join(ROOT, "dist/web/index.html");
  const fresh = (): boolean =>
    existsSync(index) && statSync(index).mtimeMs >= Math.max(newest(path.join(ROOT, "src/web")), statSync(path.join(ROOT, "vite.config.ts")).mtimeMs);
  if (fresh()) return;
  mkdirSync(path.join(ROOT, "dist"), { recursive: true });
  const lock = path.join(ROOT, "dist/.web-build.lock");
  const deadline = Date.now() + 120_000 * SLOWDOWN;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline || Date.now() - statSync(lock, { throwIfNoEntry: false })!.mtimeMs > 120_000 * SLOWDOWN) {
        rmdirSync(lock, { recursive: true } as never);
        continue;
      }
      sleep(200);
    }
  }
  try {
    if (fresh()) return;
    const vite = path.join(ROOT, "node_modules/vite/bin/vite.js");
    const result = spawnSync(process.execPath, [vite, "build"], { cwd: ROOT, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`vite build failed:\n${result.stdout}\n${result.stderr}`);
  } finally {
    rmdirSync(lock);
  }
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  // Flags from the machine notes: no sandbox as root, and no background calls to Google's hosts.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * Gives a page or context Playwright timeouts that follow from what they wait for (the server
 * answering, the page updating: WAIT_MS) instead of Playwright's fixed 30 s, which a busy machine
 * (a second `npm test` beside this one) can pass while signing in. Passing steps return as soon
 * as their element is there.
 */
export function patient<T extends Page | BrowserContext>(target: T): T {
  target.setDefaultTimeout(WAIT_MS);
  target.setDefaultNavigationTimeout(WAIT_MS);
  return target;
}

export async function shot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[]; failureSummary?: string }>;
}

/** Runs axe-core in the page; returns the serious and critical violations. */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  const source = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ content: source });
  const violations = await page.evaluate(async () => {
    const result = await (window as any).axe.run(document, { resultTypes: ["violations"] });
    return result.violations as AxeViolation[];
  });
  return violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
}

/** A ShapesWorld scene rendered as the model saw in training (64 px, flat palette colours), as PNG. */
export async function scenePng(scene: readonly SceneObject[], size = 64): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp(Buffer.from(render(scene, size)), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/** A small PNG of a filled circle, for uploads. */
export async function circlePng(color: string, size = 64): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="white"/><circle cx="${size / 2}" cy="${size / 2}" r="${size / 3}" fill="${color}"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}
