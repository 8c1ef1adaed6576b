/**
 * The whole conversation through the web client: "a red circle" (watching the preview
 * sharpen: at least 3 distinct frames), "make the circle blue" as an edit of that image, then
 * "what color is the circle?" answered "blue". Screenshots at each stage in test-results/web.
 * Its first half alone (a live generation through the UI) runs whenever the engine loads.
 */
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startJobsWhenWatched, startTestApp, type TestApp } from "../helpers/app.js";
import { copyFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { detect } from "../../src/shapes/detect.js";
import { WAIT_MS } from "../helpers/wait.js";
import { ensureWebBuild, HAS_CHROMIUM, launch, patient, ROOT, scenePng, shot, SKIP_REASON } from "./helpers.js";

/** A live turn through the UI: a model job, then the page's update (test/helpers/wait.ts). */
const TURN_TIMEOUT = WAIT_MS;
/** A seed whose run of the README's conversation succeeds with the shipped weights (see below). */
const CHAIN_SEED = 1;

/** The (shape, colour) of each object the ShapesWorld detector finds in a shown image. */
async function objectsIn(img: Locator): Promise<[string, string][]> {
  const { size, rgb } = await img.evaluate((el: HTMLImageElement) => {
    const canvas = document.createElement("canvas");
    canvas.width = el.naturalWidth;
    canvas.height = el.naturalHeight;
    const g = canvas.getContext("2d")!;
    g.drawImage(el, 0, 0);
    const rgba = g.getImageData(0, 0, canvas.width, canvas.height).data;
    const out: number[] = [];
    for (let i = 0; i < rgba.length; i += 4) out.push(rgba[i], rgba[i + 1], rgba[i + 2]);
    return { size: canvas.width, rgb: out };
  });
  return detect(Uint8Array.from(rgb), size).map((o) => [o.shape, o.color]);
}

describe.skipIf(!HAS_CHROMIUM)(HAS_CHROMIUM ? "the shapes conversation in the web client" : `the shapes conversation in the web client (${SKIP_REASON})`, () => {
  let t: TestApp;
  let browser: Browser;

  beforeAll(async () => {
    ensureWebBuild();
    t = await startTestApp({ ENGINE: "on" }); // the test helper turns the engine off by default
    startJobsWhenWatched(t); // the page subscribes after sending: let it see each turn from its start
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** A signed-in page on a new conversation, collecting page errors. */
  async function newConversationPage(): Promise<{ page: Page; errors: string[] }> {
    const page = patient(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${t.url}/?key=${encodeURIComponent(t.adminKey)}`);
    await page.getByRole("button", { name: "New conversation" }).first().click();
    await page.getByRole("heading", { level: 2, name: "New conversation" }).waitFor();
    return { page, errors };
  }

  /** Waits until the latest reply is final; returns its status word. */
  async function waitForReply(page: Page): Promise<string> {
    const badge = page.locator(".turn.assistant").last().locator(".badge");
    await expect.poll(() => badge.innerText(), { timeout: TURN_TIMEOUT, interval: 250 }).toMatch(/^(Done|Failed|Cancelled)$/);
    return badge.innerText();
  }

  async function send(page: Page, text: string): Promise<void> {
    const before = await page.locator(".turn.assistant").count();
    await page.getByRole("textbox", { name: "Message" }).fill(text);
    await page.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => page.locator(".turn.assistant").count()).toBe(before + 1);
  }

  /**
   * Records in the page what it shows, as it shows it: every preview frame (the preview's src
   * changes once per STEP with a preview) and the steps a visible progress bar showed. A short
   * job can be over before the test's next look from outside (each is a round trip to the
   * browser, slow on a busy machine); the page itself misses nothing.
   */
  async function recordFrames(page: Page): Promise<void> {
    await page.evaluate(() => {
      const frames = new Set<string>();
      const progress: number[] = [];
      Object.assign(window as any, { __frames: frames, __progress: progress });
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target as HTMLElement;
          if (el instanceof HTMLImageElement && el.classList.contains("preview") && el.src) frames.add(el.src);
          if (el instanceof HTMLProgressElement && !el.hidden && el.getClientRects().length > 0) progress.push(el.value);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["src", "value", "hidden"] });
    });
  }

  // Any model will do here (the pictures need not be right): runs whenever the engine loads.
  it("follows a live generation: previews sharpen with a progress bar, then Download and Edit this image", { timeout: 2 * TURN_TIMEOUT }, async (ctx) => {
    if (t.app.engine === null) ctx.skip(); // the model did not load (see the server log): nothing would run
    const page = patient(await browser.newPage({ viewport: { width: 1280, height: 900 } }));
    await page.goto(`${t.url}/?key=${encodeURIComponent(t.adminKey)}`);
    await page.getByRole("button", { name: "New conversation" }).first().click();
    await page.getByRole("heading", { level: 2, name: "New conversation" }).waitFor();
    await recordFrames(page);
    await page.getByRole("button", { name: "Advanced" }).click();
    await page.getByLabel("Steps").fill("24"); // ~0.4 s on a quiet machine
    await page.getByLabel("Preview").selectOption("LINEAR");
    await send(page, "a red circle");
    const reply = page.locator(".turn.assistant").last();
    if (await reply.locator("progress").isVisible()) await shot(page, "live-previewing"); // when this look is in time
    expect(await waitForReply(page)).toBe("Done");
    expect(await page.evaluate(() => (window as any).__frames.size)).toBeGreaterThanOrEqual(3);
    // The progress bar showed the steps as they came (recorded by the page itself).
    const shown: number[] = await page.evaluate(() => (window as any).__progress);
    expect(shown.length).toBeGreaterThanOrEqual(3);
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
    expect(await reply.locator("progress").isVisible()).toBe(false);
    const image = reply.locator("figure.output img");
    await expect.poll(() => image.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    const download = reply.getByRole("link", { name: "Download" });
    await expect.poll(() => download.getAttribute("href")).toMatch(/^blob:/);
    await reply.getByRole("button", { name: "Edit this image" }).click();
    expect(await page.getByLabel("Task").inputValue()).toBe("EDIT");
    await expect.poll(() => page.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(1);
    await shot(page, "live-done");
    await page.close();
  });

  // An uploaded picture: the answer is checked; the edit that follows is checked for its mechanics
  // (it runs on that upload and shows an image). The drawn conversation is the next test.
  it("answers a question about an uploaded picture, then edits it", { timeout: 3 * TURN_TIMEOUT }, async (ctx) => {
    if (t.app.engine === null) ctx.skip();
    const { page, errors } = await newConversationPage();
    const red = await scenePng([{ shape: "circle", color: "red", cx: 0.5, cy: 0.5, s: 0.2 }]);
    await page.locator('input[type="file"]').setInputFiles({ name: "red-circle.png", mimeType: "image/png", buffer: red });
    await expect.poll(() => page.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(1);
    await send(page, "what color is the circle?");
    expect(await waitForReply(page)).toBe("Done");
    const answer = await page.locator(".turn.assistant").last().locator(".text").innerText();
    expect(answer.trim().toLowerCase()).toBe("red");

    await send(page, "make the circle blue"); // no attachment: edits the conversation's latest image
    expect(await waitForReply(page)).toBe("Done");
    const edited = page.locator(".turn.assistant").last().locator("figure.output img");
    await expect.poll(() => edited.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    const file = await shot(page, "answer-and-edit");
    // docs/screenshot.png is tracked: refresh it only when asked (UPDATE_SCREENSHOT=1 npm test -- test/web).
    if (process.env.UPDATE_SCREENSHOT === "1") {
      await mkdir(path.join(ROOT, "docs"), { recursive: true });
      await copyFile(file, path.join(ROOT, "docs/screenshot.png"));
    }
    expect(errors).toEqual([]);
    await page.close();
  });

  // The README's conversation with the shipped weights. Seeded, so it is the same run every time
  // (the engine gives the same bytes for the same seed): over seeds 1-40 the whole chain succeeds
  // for all 40 with the shipped weights (39 with the shipment before, where seed 21 failed:
  // models/unipic-tiny/MODEL_CARD.md, scripts/readme-chain.ts); 40 seeds do not make it certain, so
  // unseeded it could still fail now and then.
  // Each picture is checked by the ShapesWorld detector, not only by the model's own answer.
  it("red circle -> make the circle blue -> what color is the circle? (previews sharpen; the answer says blue)", { timeout: 6 * TURN_TIMEOUT }, async (ctx) => {
    if (t.app.engine === null) ctx.skip();
    const { page, errors } = await newConversationPage();

    await recordFrames(page);
    await page.getByRole("button", { name: "Advanced" }).click();
    await page.getByLabel("Seed").fill(String(CHAIN_SEED)); // kept for the next sends too

    // 1. Generate.
    await send(page, "a red circle");
    await expect.poll(() => page.evaluate(() => (window as any).__frames.size), { timeout: TURN_TIMEOUT, interval: 100 }).toBeGreaterThanOrEqual(1);
    await shot(page, "full-1-previewing");
    expect(await waitForReply(page)).toBe("Done");
    expect(await page.evaluate(() => (window as any).__frames.size)).toBeGreaterThanOrEqual(3);
    const generated = page.locator(".turn.assistant").last().locator("figure.output img");
    await expect.poll(() => generated.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await objectsIn(generated)).toEqual([["circle", "red"]]);
    await shot(page, "full-2-red-circle");

    // 2. Edit that image.
    await page.locator(".turn.assistant").last().getByRole("button", { name: "Edit this image" }).click();
    expect(await page.getByLabel("Task").inputValue()).toBe("EDIT");
    await send(page, "make the circle blue");
    expect(await waitForReply(page)).toBe("Done");
    const edited = page.locator(".turn.assistant").last().locator("figure.output img");
    await expect.poll(() => edited.evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await objectsIn(edited)).toEqual([["circle", "blue"]]);
    await shot(page, "full-3-blue-circle");

    // 3. Ask about it: the conversation's latest image is the one asked about.
    await send(page, "what color is the circle?");
    expect(await waitForReply(page)).toBe("Done");
    const answer = await page.locator(".turn.assistant").last().locator(".text").innerText();
    expect(answer.toLowerCase()).toContain("blue");
    await shot(page, "full-4-answer", true);
    expect(errors).toEqual([]);
    await page.close();
  });
});
