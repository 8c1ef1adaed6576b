/**
 * The web client in headless Debian Chromium against a real server on a fresh database: sign-in,
 * conversations, the composer (uploads, task, parameters), a queued turn and its cancel,
 * accessibility (axe-core) and phone width. Screenshots go to test-results/web.
 * Without /usr/bin/chromium the suite is skipped and says why.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadManifest } from "../../src/engine/manifest.js";
import { MODEL_DIR } from "../engine/fixtures.js";
import { gqlOk, startTestApp, type TestApp } from "../helpers/app.js";
import { WAIT_MS } from "../helpers/wait.js";
import { axeSerious, circlePng, ensureWebBuild, HAS_CHROMIUM, launch, patient, shot, SKIP_REASON } from "./helpers.js";

const LAST_TURNS = `query($id: ID!) { conversation(id: $id) { title turns(last: 10) { nodes { id role task status text params inputImages { id } } } } }`;

describe.skipIf(!HAS_CHROMIUM)(HAS_CHROMIUM ? "web client in Chromium" : `web client in Chromium (${SKIP_REASON})`, () => {
  let t: TestApp;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    ensureWebBuild();
    t = await startTestApp();
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** bypassCSP: only for injecting axe-core, which the page's CSP (rightly) refuses as an inline script. */
  async function open(width = 1280, height = 820, bypassCSP = false): Promise<Page> {
    context = patient(await browser.newContext({ viewport: { width, height }, bypassCSP }));
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    return page;
  }
  afterEach(async () => {
    await context?.close();
    expect(pageErrors, "uncaught errors in the page").toEqual([]);
  });

  async function signInByLink(p: Page, key = t.adminKey): Promise<void> {
    await p.goto(`${t.url}/?key=${encodeURIComponent(key)}`);
    await p.getByRole("button", { name: "Sign out" }).waitFor();
  }

  /** Creates a conversation through the UI; returns its id (from the URL). */
  async function newConversation(p: Page): Promise<string> {
    await p.getByRole("button", { name: "New conversation" }).first().click();
    await p.getByRole("heading", { level: 2, name: "New conversation" }).waitFor();
    return decodeURIComponent(/#\/c\/(.+)$/.exec(p.url())![1]!);
  }

  async function send(p: Page, text: string): Promise<void> {
    const before = await p.locator(".turn.assistant").count();
    await p.getByRole("textbox", { name: "Message" }).fill(text);
    await p.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => p.locator(".turn.assistant").count()).toBe(before + 1);
  }

  it("signs in with a ?key= link, drops the key from the URL, keeps it across reloads, and signs out", async () => {
    const p = await open();
    await signInByLink(p);
    expect(p.url()).toBe(`${t.url}/`);
    expect(await p.evaluate(() => localStorage.getItem("unipic.apiKey"))).toBe(t.adminKey);
    await p.reload();
    await p.getByText("Signed in as").waitFor();
    await p.getByRole("button", { name: "Sign out" }).click();
    await p.getByLabel("API key").waitFor();
    expect(await p.evaluate(() => localStorage.getItem("unipic.apiKey"))).toBeNull();
  });

  it("signs in with the form, and says so in plain words when the key is wrong", async () => {
    const p = await open();
    await p.goto(t.url);
    const key = p.getByLabel("API key");
    await key.fill("upk_wrong");
    await key.press("Enter");
    await expect.poll(() => p.getByRole("alert").innerText()).toContain("API key was not accepted");
    await shot(p, "signin-error");
    await key.fill(t.adminKey);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByText("Signed in as").waitFor();
    expect(await p.locator(".alerts").textContent()).toBe("");
  });

  it("creates, renames and deletes a conversation", async () => {
    const p = await open();
    await signInByLink(p);
    const id = await newConversation(p);
    await p.getByRole("button", { name: "Rename" }).click();
    const title = p.getByLabel("Conversation title");
    await title.fill("Circles");
    await title.press("Enter");
    await p.getByRole("heading", { level: 2, name: "Circles" }).waitFor();
    await p.getByRole("navigation", { name: "Conversations" }).getByRole("link", { name: "Circles" }).waitFor();
    expect((await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.title).toBe("Circles");
    await shot(p, "renamed");

    await p.getByRole("button", { name: "Delete" }).click();
    await p.getByRole("button", { name: "Delete for good" }).click();
    await p.getByRole("heading", { name: "Start a conversation" }).waitFor();
    expect(await p.getByRole("link", { name: "Circles" }).count()).toBe(0);
    const list = await gqlOk(t.url, t.adminKey, `{ conversations(first: 100) { nodes { id } } }`);
    expect(list.conversations.nodes.map((c: { id: string }) => c.id)).not.toContain(id);
  });

  it("shows a sent message's reply as QUEUED with its queue position, and Cancel cancels it", async () => {
    const p = await open();
    await signInByLink(p);
    const id = await newConversation(p);
    await send(p, "a red circle");
    const reply = p.locator(".turn.assistant").last();
    await expect.poll(() => reply.locator(".badge").innerText()).toBe("Queued");
    const stored = (await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.turns.nodes;
    const assistant = stored.find((x: { role: string }) => x.role === "ASSISTANT");
    expect(assistant.status).toBe("QUEUED");
    // The position shown is the server's (null until the engine takes jobs: "waiting for the model").
    const shown = await reply.locator(".status").getAttribute("data-queue-position");
    const live = await gqlOk(t.url, t.adminKey, `query($id: ID!) { node(id: $id) { ... on Turn { queuePosition } } }`, { id: assistant.id });
    expect(shown).toBe(live.node.queuePosition === null ? "" : String(live.node.queuePosition));
    expect(await reply.locator(".status").innerText()).toMatch(/^Queued: /);
    expect(await reply.getByRole("status").count()).toBe(1); // announced politely
    await shot(p, "queued");

    await reply.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => reply.locator(".badge").innerText()).toBe("Cancelled");
    expect(await reply.getByRole("button", { name: "Cancel" }).isVisible()).toBe(false);
    const after = (await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.turns.nodes;
    expect(after.find((x: { id: string }) => x.id === assistant.id).status).toBe("CANCELLED");
    await shot(p, "cancelled");
  });

  it("uploads images by picker, paste and drop, and sends them with the message", async () => {
    const p = await open();
    await signInByLink(p);
    const id = await newConversation(p);
    // Three different images: uploads are content-addressed, so equal bytes would be one image.
    await p.locator('input[type="file"]').setInputFiles({ name: "red.png", mimeType: "image/png", buffer: await circlePng("red") });
    await expect.poll(() => p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(1);
    let b64 = (await circlePng("green")).toString("base64");
    // Paste and drop as the browser delivers them: events carrying a DataTransfer with a File.
    await p.getByRole("textbox", { name: "Message" }).evaluate((el, data) => {
      const file = new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "pasted.png", { type: "image/png" });
      const dt = new DataTransfer();
      dt.items.add(file);
      el.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
    }, b64);
    await expect.poll(() => p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(2);
    b64 = (await circlePng("blue")).toString("base64");
    await p.locator(".scroller").evaluate((el, data) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], "dropped.png", { type: "image/png" }));
      el.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
      el.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, b64);
    await expect.poll(() => p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(3);
    // One attachment removed again with its button.
    await p.getByRole("button", { name: /^Remove image dropped/ }).click();
    await expect.poll(() => p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(2);
    await shot(p, "attachments");
    await send(p, "what color is the circle?");
    const turns = (await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.turns.nodes;
    expect(turns.find((x: { role: string }) => x.role === "USER").inputImages).toHaveLength(2);
    // The sent images show in the chat, fetched with the key.
    await expect.poll(() => p.locator(".turn.user img").evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length)).toBe(2);
    expect(await p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(0);
    await shot(p, "sent-with-images");
  });

  it("sends the chosen task and the advanced parameters; empty fields are left to the model's defaults", async () => {
    const p = await open();
    await signInByLink(p);
    const id = await newConversation(p);
    await p.getByLabel("Task").selectOption("GENERATE");
    const toggle = p.getByRole("button", { name: "Advanced" });
    await toggle.click();
    expect(await toggle.getAttribute("aria-expanded")).toBe("true");
    await p.getByLabel("Steps").fill("12");
    await p.getByLabel("CFG scale").fill("3.5");
    await p.getByLabel("Temperature").fill("0.9");
    await p.getByLabel("Seed").fill("42");
    await p.getByLabel("Preview").selectOption("VAE");
    await shot(p, "advanced");
    await send(p, "a blue square");
    let turns = (await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.turns.nodes;
    let reply = turns.filter((x: { role: string }) => x.role === "ASSISTANT").at(-1);
    expect(reply.task).toBe("GENERATE");
    expect(reply.params).toMatchObject({ steps: 12, cfg: 3.5, temperature: 0.9, seed: 42 });
    expect(String(reply.params.previewMethod).toUpperCase()).toBe("VAE"); // stored in the model's spelling

    await p.getByRole("button", { name: "Reset to defaults" }).click();
    await p.getByLabel("Steps").fill("8");
    const request = p.waitForRequest((r) => r.method() === "POST" && r.url().endsWith("/graphql") && (r.postData() ?? "").includes("SendMessage"));
    await send(p, "a green triangle");
    expect((await request).postDataJSON().variables.input.params).toEqual({ steps: 8 }); // empty fields are not sent
    turns = (await gqlOk(t.url, t.adminKey, LAST_TURNS, { id })).conversation.turns.nodes;
    reply = turns.filter((x: { role: string }) => x.role === "ASSISTANT").at(-1);
    expect(reply.task).toBe("AUTO"); // the task goes back to Auto after a send
    // The turn is stored with the parameters it runs with: the model's defaults where none was set.
    const defaults = (await loadManifest(MODEL_DIR)).sampling; // the model's own (they change with its weights)
    expect(reply.params).toMatchObject({ steps: 8, cfg: defaults.cfg, temperature: defaults.temperature, previewMethod: "linear" });
    expect(reply.params.seed).not.toBe(42); // random when left empty
  });

  it("shows bad input from the server in plain words", async () => {
    const p = await open();
    await signInByLink(p);
    await newConversation(p);
    await p.getByRole("button", { name: "Advanced" }).click();
    // The browser's own range checks apply on submit; skip them to see the server's answer.
    await p.locator("form.composer").evaluate((f) => ((f as HTMLFormElement).noValidate = true));
    await p.getByLabel("Steps").fill("100000");
    await p.getByRole("textbox", { name: "Message" }).fill("a red circle");
    await p.getByRole("button", { name: "Send" }).click();
    await expect.poll(() => p.getByRole("alert").innerText()).toMatch(/^Steps: expected /);
    await shot(p, "bad-input");
  });

  it("has no serious or critical axe-core violations: sign-in, conversation, composer with advanced open", async () => {
    const p = await open(1280, 820, true);
    await p.goto(t.url);
    await p.getByLabel("API key").waitFor();
    expect(await axeSerious(p), "sign-in page").toEqual([]);
    await signInByLink(p);
    expect(await axeSerious(p), "welcome page").toEqual([]);
    await newConversation(p);
    await p.locator('input[type="file"]').setInputFiles({ name: "red.png", mimeType: "image/png", buffer: await circlePng("red") });
    await send(p, "what color is the circle?");
    await send(p, "a red circle");
    await p.locator(".turn.assistant").first().getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => p.locator(".badge", { hasText: "Cancelled" }).count()).toBe(1);
    expect(await axeSerious(p), "conversation page").toEqual([]);
    await p.getByRole("button", { name: "Advanced" }).click();
    expect(await axeSerious(p), "composer with advanced open").toEqual([]);
    await p.getByRole("button", { name: "Rename" }).click();
    expect(await axeSerious(p), "rename form").toEqual([]);
  });

  it("loads the latest page of a long conversation, and earlier messages on request", async () => {
    const p = await open();
    const { createConversation } = await gqlOk(t.url, t.adminKey, `mutation { createConversation(input: { title: "Long" }) { id } }`);
    for (let i = 1; i <= 11; i++) {
      await gqlOk(t.url, t.adminKey, `mutation($input: SendMessageInput!) { sendMessage(input: $input) { userTurn { id } } }`, {
        input: { conversationId: createConversation.id, text: `message ${i}` },
      });
    }
    await p.goto(`${t.url}/?key=${encodeURIComponent(t.adminKey)}#/c/${encodeURIComponent(createConversation.id)}`);
    await p.getByRole("heading", { level: 2, name: "Long" }).waitFor();
    await expect.poll(() => p.locator(".turn").count()).toBe(20);
    expect(await p.locator(".turn.user .text").first().innerText()).toBe("message 2");
    await p.getByRole("button", { name: "Load earlier messages" }).click();
    await expect.poll(() => p.locator(".turn").count()).toBe(22);
    expect(await p.locator(".turn.user .text").first().innerText()).toBe("message 1");
    expect(await p.getByRole("button", { name: "Load earlier messages" }).isVisible()).toBe(false);
  });

  it("is keyboard operable: skip link, tab order to the composer, Enter sends", async () => {
    const p = await open();
    await signInByLink(p);
    await newConversation(p);
    await p.reload();
    await p.getByRole("heading", { level: 2, name: "New conversation" }).waitFor();
    await p.keyboard.press("Tab");
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe("Skip to conversation");
    await p.keyboard.press("Enter");
    expect(await p.evaluate(() => document.activeElement?.id)).toBe("main");
    await p.keyboard.press("Tab"); // the title is focusable by script only
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe("Rename");
    await p.keyboard.press("Tab");
    expect(await p.evaluate(() => document.activeElement?.textContent)).toBe("Delete");
    await p.getByRole("textbox", { name: "Message" }).focus();
    await p.keyboard.type("a red circle");
    await p.keyboard.press("Enter");
    await expect.poll(() => p.locator(".turn.assistant").count()).toBe(1);
    // Focus is visible (the focus ring is a box-shadow).
    const ring = await p.evaluate(() => getComputedStyle(document.activeElement!).boxShadow);
    expect(ring).not.toBe("none");
  });

  it("works at phone width (375 px) without horizontal scrolling", async () => {
    const p = await open(375, 740);
    const noHorizontalScroll = () => p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    await p.goto(t.url);
    await p.getByLabel("API key").waitFor();
    expect(await noHorizontalScroll(), "sign-in").toBe(true);
    await shot(p, "phone-signin");
    await signInByLink(p);
    const menu = p.getByRole("button", { name: "Conversations" });
    await menu.click();
    await p.getByRole("button", { name: "New conversation" }).first().click();
    await p.getByRole("heading", { level: 2, name: "New conversation" }).waitFor();
    await p.locator('input[type="file"]').setInputFiles({ name: "red.png", mimeType: "image/png", buffer: await circlePng("red", 256) });
    await send(p, "what color is the circle? Please answer in one short sentence with the color name.");
    await shot(p, "phone-conversation");
    expect(await noHorizontalScroll(), "conversation").toBe(true);
    await p.getByRole("button", { name: "Advanced" }).click();
    await shot(p, "phone-advanced", true);
    expect(await noHorizontalScroll(), "advanced").toBe(true);
    await menu.click();
    expect(await noHorizontalScroll(), "menu open").toBe(true);
    await shot(p, "phone-menu");
  });

  it("serves GraphiQL, which sends the stored key", async () => {
    const p = await open();
    await signInByLink(p);
    await p.goto(`${t.url}/graphiql`);
    await expect.poll(() => p.locator(".graphiql-query-editor").innerText()).toContain("viewer");
    // Under load GraphiQL may still be starting when first clicked: click again until it answers.
    await expect
      .poll(
        async () => {
          const text = await p.locator(".result-window").innerText();
          if (!text.includes('"name"')) await p.locator(".graphiql-execute-button").click();
          return text;
        },
        { timeout: WAIT_MS, interval: 1_000 },
      )
      .toContain('"name": "admin"');
    await shot(p, "graphiql");
  });

  it("takes the README screenshot of a conversation", async () => {
    const p = await open(1280, 800);
    await signInByLink(p, await t.newUser("ada")); // a user of its own: a sidebar without the other tests' conversations
    await newConversation(p);
    await p.getByRole("button", { name: "Rename" }).click();
    await p.getByLabel("Conversation title").fill("Shapes");
    await p.getByLabel("Conversation title").press("Enter");
    await send(p, "a red circle");
    await p.locator(".turn.assistant").last().getByRole("button", { name: "Cancel" }).click();
    await p.locator('input[type="file"]').setInputFiles({ name: "circle.png", mimeType: "image/png", buffer: await circlePng("#d62828", 256) });
    await expect.poll(() => p.getByRole("list", { name: "Attached images" }).locator("li").count()).toBe(1);
    await send(p, "what color is the circle?");
    await p.getByRole("textbox", { name: "Message" }).fill("make the circle blue");
    await expect.poll(() => p.locator(".turn.user img").evaluateAll((imgs) => imgs.map((i) => (i as HTMLImageElement).naturalWidth))).toEqual([256]);
    await shot(p, "conversation");
  });
});
