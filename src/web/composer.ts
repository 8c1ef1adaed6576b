/// <reference lib="dom" />
/**
 * The message form: text, images (picker, drag and drop, paste, or "Edit this image"), the task,
 * and sampling parameters behind an "Advanced" toggle. Parameters left empty are not sent, so the
 * server applies the model's defaults.
 */
import { describeError, upload, type Uploaded } from "./api.js";
import { h, uid } from "./dom.js";
import type { ImageRef, Task } from "./queries.js";
import { authImage } from "./turn.js";

export interface Message {
  text: string;
  imageIds: string[];
  task: Task;
  params: Record<string, number | string>;
}

export interface Composer {
  el: HTMLFormElement;
  /** Attaches an image already on the server (the "Edit this image" button). */
  attach(image: ImageRef, task?: Task): void;
  /** Uploads files and attaches them (drop targets outside the form call this). */
  addFiles(files: Iterable<File>): void;
  focus(): void;
  setEnabled(enabled: boolean): void;
}

const ACCEPT = "image/png,image/jpeg,image/webp";

function numberField(label: string, name: string, attrs: Record<string, string | number>, hint: string): HTMLElement {
  const id = uid(`param-${name}`);
  const hintId = `${id}-hint`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name, type: "number", inputmode: "decimal", "aria-describedby": hintId, ...attrs }),
    h("small", { id: hintId }, hint),
  );
}

export function createComposer(onSend: (message: Message) => Promise<void>, onError: (message: string) => void): Composer {
  const textId = uid("message");
  const taskId = uid("task");
  const advancedId = uid("advanced");
  // Hidden: the "Attach image" button opens it, so the control looks like the others.
  const fileInput = h("input", { type: "file", accept: ACCEPT, multiple: true, hidden: true, id: uid("file"), "aria-label": "Image files" });
  const text = h("textarea", { id: textId, name: "text", rows: 2, required: true, placeholder: "Describe an image, ask about one, or say how to change it…" });
  const task = h(
    "select",
    { id: taskId, name: "task" },
    h("option", { value: "AUTO" }, "Auto"),
    h("option", { value: "GENERATE" }, "Generate image"),
    h("option", { value: "EDIT" }, "Edit image"),
    h("option", { value: "UNDERSTAND" }, "Ask about image"),
  );
  const previewMethod = h(
    "select",
    { id: uid("param-preview"), name: "previewMethod" },
    h("option", { value: "" }, "Model default"),
    h("option", { value: "LINEAR" }, "Linear (fast)"),
    h("option", { value: "VAE" }, "VAE (sharper, slower)"),
    h("option", { value: "NONE" }, "None"),
  );
  const advanced = h(
    "fieldset",
    { id: advancedId, class: "advanced", hidden: true },
    h("legend", {}, "Sampling parameters"),
    h("p", { class: "hint" }, "Leave a field empty to use the model's default."),
    h(
      "div",
      { class: "grid" },
      numberField("Steps", "steps", { min: 1, max: 1000, step: 1, placeholder: "default" }, "MAR iterations; more is slower and finer."),
      numberField("CFG scale", "cfg", { min: 1, max: 30, step: 0.1, placeholder: "default" }, "How closely to follow the text (1 = off)."),
      numberField("Temperature", "temperature", { min: 0, max: 5, step: 0.05, placeholder: "default" }, "Randomness of each step."),
      numberField("Seed", "seed", { min: 0, max: 2147483647, step: 1, placeholder: "random" }, "Same seed and settings, same image."),
      h("div", { class: "field" }, h("label", { for: previewMethod.id }, "Preview"), previewMethod, h("small", {}, "How live previews are drawn.")),
    ),
    h("button", { type: "button", class: "link", onclick: () => resetParams() }, "Reset to defaults"),
  );
  const toggle = h("button", { type: "button", class: "secondary small", "aria-expanded": "false", "aria-controls": advancedId }, "Advanced");
  toggle.addEventListener("click", () => {
    advanced.hidden = !advanced.hidden;
    toggle.setAttribute("aria-expanded", String(!advanced.hidden));
  });
  const attachments = h("ul", { class: "attachments", "aria-label": "Attached images" });
  const uploading = h("p", { class: "hint", role: "status", "aria-live": "polite" });
  const attachLabel = h("button", { type: "button", class: "secondary small", onclick: () => fileInput.click() }, "Attach image");
  const send = h("button", { type: "submit", class: "primary" }, "Send");
  const form = h(
    "form",
    { class: "composer", "aria-label": "New message" },
    attachments,
    uploading,
    h("div", { class: "compose-row" }, h("label", { for: textId, class: "visually-hidden" }, "Message"), text, send),
    h(
      "div",
      { class: "compose-tools" },
      fileInput,
      attachLabel,
      h("span", { class: "task" }, h("label", { for: taskId }, "Task"), task),
      toggle,
      h("span", { class: "hint drop-hint" }, "Drop or paste images here"),
    ),
    advanced,
  );

  const attached: Array<{ id: string; li: HTMLElement }> = [];
  let pending = 0;

  function resetParams(): void {
    for (const input of advanced.querySelectorAll<HTMLInputElement>("input")) input.value = "";
    previewMethod.value = "";
  }

  function addAttachment(image: ImageRef | Uploaded, label: string): void {
    // Images are content-addressed: the same bytes twice are one image.
    if (attached.some((a) => a.id === image.id)) {
      uploading.textContent = "That image is already attached.";
      return;
    }
    const remove = h("button", { type: "button", class: "remove", "aria-label": `Remove ${label}` }, "×");
    const li = h("li", {}, authImage(image as ImageRef, label, "thumb"), remove);
    const entry = { id: image.id, li };
    remove.addEventListener("click", () => {
      attached.splice(attached.indexOf(entry), 1);
      li.remove();
      text.focus();
    });
    attached.push(entry);
    attachments.append(li);
  }

  function addFiles(files: Iterable<File>): void {
    for (const file of files) {
      if (!file.type.startsWith("image/")) {
        onError(`${file.name || "That file"} is not an image.`);
        continue;
      }
      pending += 1;
      uploading.textContent = `Uploading ${file.name || "image"}…`;
      upload(file)
        .then((img) => {
          addAttachment(img, `image ${file.name || attached.length + 1}`);
          uploading.textContent = "Image attached.";
        })
        .catch((e) => {
          uploading.textContent = "";
          onError(`Upload failed: ${describeError(e)}`);
        })
        .finally(() => (pending -= 1));
    }
  }

  function params(): Record<string, number | string> {
    const out: Record<string, number | string> = {};
    for (const input of advanced.querySelectorAll<HTMLInputElement>("input")) {
      if (input.value.trim() !== "" && Number.isFinite(input.valueAsNumber)) out[input.name] = input.valueAsNumber;
    }
    if (previewMethod.value) out.previewMethod = previewMethod.value;
    return out;
  }

  fileInput.addEventListener("change", () => {
    addFiles(Array.from(fileInput.files ?? []));
    fileInput.value = "";
  });
  form.addEventListener("paste", (e: ClipboardEvent) => {
    const files = Array.from(e.clipboardData?.files ?? []).filter((f) => f.type.startsWith("image/"));
    if (files.length > 0) {
      e.preventDefault();
      addFiles(files);
    }
  });
  text.addEventListener("keydown", (e: KeyboardEvent) => {
    // Enter sends, Shift+Enter breaks the line (the chat convention).
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (pending > 0) {
      onError("Wait for the upload to finish, then send.");
      return;
    }
    const message: Message = { text: text.value.trim(), imageIds: attached.map((a) => a.id), task: task.value as Task, params: params() };
    if (!message.text) {
      text.focus();
      return;
    }
    send.disabled = true;
    onSend(message)
      .then(() => {
        text.value = "";
        attached.splice(0).forEach((a) => a.li.remove());
        uploading.textContent = "";
        task.value = "AUTO";
      })
      .catch((err) => onError(describeError(err)))
      .finally(() => {
        send.disabled = false;
        text.focus();
      });
  });

  return {
    el: form,
    attach(image, nextTask) {
      addAttachment(image, "image to edit");
      if (nextTask) task.value = nextTask;
      text.focus();
    },
    addFiles,
    focus: () => text.focus(),
    setEnabled(enabled) {
      for (const control of form.querySelectorAll<HTMLInputElement | HTMLButtonElement | HTMLTextAreaElement | HTMLSelectElement>("input, button, textarea, select")) control.disabled = !enabled;
    },
  };
}
