/// <reference lib="dom" />
/**
 * One message in the chat. An assistant turn that is not final follows `turnUpdated` and updates
 * its elements in place (status, progress bar, preview, streaming text) rather than re-rendering,
 * so the Cancel button keeps keyboard focus and screen readers hear one polite status line.
 */
import { ApiError, describeError, gql, imageUrl, subscribe } from "./api.js";
import { fill, h } from "./dom.js";
import { CANCEL_TURN, FINAL, TURN_UPDATED, type ImageRef, type Turn, type TurnEvent } from "./queries.js";

export interface TurnCallbacks {
  /** "Edit this image": make it the source of the next message. */
  onEditImage(image: ImageRef): void;
  onError(message: string): void;
  /** The turn reached COMPLETED, FAILED or CANCELLED. */
  onFinal?(turn: Turn): void;
}

export interface TurnView {
  el: HTMLElement;
  turn: Turn;
  update(turn: Turn): void;
  dispose(): void;
}

const STATUS_WORDS: Record<Turn["status"], string> = {
  QUEUED: "Queued",
  RUNNING: "Running",
  COMPLETED: "Done",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};

const KIND_WORDS: Record<string, string> = { GENERATE: "Image", EDIT: "Edit", UNDERSTAND: "Answer" };

/** An <img> whose bytes come through the authenticated fetch. */
export function authImage(image: ImageRef, alt: string, className = "turn-image"): HTMLImageElement {
  const img = h("img", { class: className, alt, width: image.width, height: image.height, decoding: "async" });
  imageUrl(image.url).then(
    (src) => (img.src = src),
    () => (img.alt = `${alt} (could not be loaded)`),
  );
  return img;
}

function imageFigure(image: ImageRef, alt: string, turn: Turn, callbacks: TurnCallbacks): HTMLElement {
  const download = h("a", { class: "button secondary", download: `unipic-${turn.id.slice(-8)}.png`, "aria-disabled": "true" }, "Download");
  imageUrl(image.url).then(
    (src) => {
      download.href = src;
      download.removeAttribute("aria-disabled");
    },
    () => undefined,
  );
  return h(
    "figure",
    { class: "output" },
    authImage(image, alt),
    h("figcaption", { class: "image-actions" }, download, h("button", { type: "button", class: "secondary", onclick: () => callbacks.onEditImage(image) }, "Edit this image")),
  );
}

function when(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function createTurnView(initial: Turn, callbacks: TurnCallbacks): TurnView {
  const mine = initial.role === "USER";
  const el = h("li", { class: `turn ${mine ? "user" : "assistant"}` });
  const meta = h("p", { class: "meta" });
  const inputs = h("div", { class: "inputs" });
  const text = h("div", { class: "text" });
  const outputs = h("div", { class: "outputs" });
  // Live parts (assistant turns only): built once, updated in place.
  const badge = h("span", { class: "badge" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const progress = h("progress", { max: 1, value: 0, "aria-label": "Generation progress", hidden: true });
  const preview = h("img", { class: "preview", alt: "Preview of the image being generated", hidden: true });
  const cancel = h("button", { type: "button", class: "danger small", onclick: () => void doCancel() }, "Cancel");
  // Step counts change several times a second: shown, but kept out of the live region.
  const steps = h("span", { class: "steps" });
  const statusRow = h("div", { class: "status-row" }, h("div", {}, status, steps), cancel);
  const live = h("div", { class: "live" }, statusRow, progress, preview);
  el.append(meta, inputs, text, ...(mine ? [] : [live]), outputs);

  let turn = initial;
  let stop: (() => void) | undefined;
  let streamed = "";

  async function doCancel(): Promise<void> {
    cancel.disabled = true;
    try {
      const data = await gql<{ cancelTurn: Turn }>(CANCEL_TURN, { id: turn.id });
      update(data.cancelTurn);
    } catch (e) {
      cancel.disabled = false;
      callbacks.onError(describeError(e));
    }
  }

  function renderMeta(): void {
    const who = mine ? "You" : "UniPic";
    const kind = !mine && turn.kind ? KIND_WORDS[turn.kind] ?? turn.kind : null;
    fill(meta, h("span", { class: "who" }, who), kind && h("span", { class: "kind" }, kind), h("time", { datetime: turn.createdAt }, when(turn.createdAt)));
    if (!mine) {
      badge.textContent = STATUS_WORDS[turn.status];
      badge.dataset.status = turn.status;
      meta.append(badge);
      cancel.hidden = FINAL.has(turn.status);
    }
  }

  function renderStatus(event?: TurnEvent): void {
    el.dataset.status = turn.status;
    if (turn.status === "QUEUED") {
      const pos = event?.queuePosition ?? turn.queuePosition;
      const where = pos === null || pos === undefined ? "waiting for the model" : pos === 0 ? "next in line" : `${pos} ahead in the queue`;
      const eta = event?.etaMs ? `, about ${Math.max(1, Math.round(event.etaMs / 1000))} s` : "";
      status.textContent = `Queued: ${where}${eta}.`;
      status.dataset.queuePosition = pos === null || pos === undefined ? "" : String(pos);
    } else if (turn.status === "RUNNING") {
      const doing = turn.kind === "UNDERSTAND" ? "Writing the answer…" : turn.kind === "EDIT" ? "Editing the image…" : "Generating the image…";
      if (status.textContent !== doing) status.textContent = doing;
      if (event?.kind === "STEP" && event.step !== null && event.totalSteps) steps.textContent = `Step ${event.step} of ${event.totalSteps}`;
    } else if (turn.status === "FAILED") {
      status.textContent = `Failed: ${turn.error?.message ?? "the model could not finish this turn"}.`;
    } else if (turn.status === "CANCELLED") {
      status.textContent = "Cancelled.";
    } else {
      status.textContent = "";
    }
    if (turn.status !== "RUNNING") steps.textContent = "";
    if (FINAL.has(turn.status)) {
      progress.hidden = true;
      // The final image replaces the preview; a cancelled generation keeps its last preview.
      if (turn.status === "COMPLETED" || !preview.src) preview.hidden = true;
    }
  }

  function renderText(): void {
    const value = turn.text || streamed;
    if (mine || value) fill(text, ...value.split("\n").flatMap((line, i) => (i === 0 ? [line] : [h("br"), line])));
    else text.replaceChildren();
  }

  function renderImages(): void {
    fill(inputs, ...turn.inputImages.map((img) => authImage(img, mine ? "Attached image" : "Source image", "turn-image small")));
    const alt = turn.kind === "EDIT" ? `Edited image: ${turn.text || "result"}` : "Generated image";
    fill(outputs, ...turn.outputImages.map((img) => imageFigure(img, alt, turn, callbacks)));
  }

  function onEvent(event: TurnEvent): void {
    if (event.kind === "TOKEN" && event.delta) streamed += event.delta;
    if (event.kind === "STEP") {
      if (event.totalSteps) {
        progress.hidden = false;
        progress.max = event.totalSteps;
        progress.value = event.step ?? 0;
      }
      const p = event.preview;
      if (p && (p.dataUrl || p.url)) {
        preview.width = p.width;
        preview.height = p.height;
        preview.dataset.step = String(p.step);
        preview.hidden = false;
        if (p.dataUrl) preview.src = p.dataUrl;
        else void imageUrl(p.url!).then((src) => (preview.src = src), () => undefined);
      }
    }
    update(event.turn, event);
  }

  function update(next: Turn, event?: TurnEvent): void {
    const wasFinal = FINAL.has(turn.status);
    const textChanged = next.text !== turn.text || event?.kind === "TOKEN";
    const imagesChanged = next.outputImages.length !== turn.outputImages.length || next.inputImages.length !== turn.inputImages.length;
    turn = next;
    view.turn = next;
    renderMeta();
    renderStatus(event);
    if (textChanged) renderText();
    if (imagesChanged) renderImages();
    if (!wasFinal && FINAL.has(next.status)) {
      stop?.();
      stop = undefined;
      callbacks.onFinal?.(next);
    }
  }

  const view: TurnView = {
    el,
    turn,
    update: (t) => update(t),
    dispose: () => {
      stop?.();
      stop = undefined;
    },
  };

  renderMeta();
  renderStatus();
  renderText();
  renderImages();
  if (!mine && !FINAL.has(turn.status)) {
    stop = subscribe<{ turnUpdated: TurnEvent }>(TURN_UPDATED, { id: turn.id }, (data) => onEvent(data.turnUpdated), (e: ApiError) =>
      callbacks.onError(describeError(e)),
    );
  }
  return view;
}
