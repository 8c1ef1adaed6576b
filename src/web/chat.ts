/// <reference lib="dom" />
/**
 * The open conversation: its title (rename, delete), the turns as a chat (latest page first,
 * "Load earlier" for the rest), and the composer. New turns from other tabs arrive through
 * `conversationUpdated`, so two windows on one conversation stay in step.
 */
import { describeError, gql, subscribe } from "./api.js";
import { createComposer, type Message } from "./composer.js";
import { fill, h, uid } from "./dom.js";
import { CONVERSATION, CONVERSATION_UPDATED, DELETE_CONVERSATION, RENAME_CONVERSATION, SEND_MESSAGE, type ConversationSummary, type Turn } from "./queries.js";
import { createTurnView, type TurnView } from "./turn.js";

const PAGE = 20;

export interface ChatCallbacks {
  onError(message: string): void;
  onChanged(conversation: ConversationSummary): void;
  onDeleted(id: string): void;
}

interface Page {
  conversation: ConversationSummary & {
    turns: { totalCount: number; nodes: Turn[]; pageInfo: { hasPreviousPage: boolean; startCursor: string | null } };
  };
}

export interface Chat {
  el: HTMLElement;
  id: string;
  dispose(): void;
}

export async function openChat(id: string, callbacks: ChatCallbacks): Promise<Chat> {
  const data = await gql<Page>(CONVERSATION, { id, last: PAGE });
  let summary: ConversationSummary = { id, title: data.conversation.title, updatedAt: data.conversation.updatedAt };
  const views = new Map<string, TurnView>();
  let before = data.conversation.turns.pageInfo.startCursor;

  const titleId = uid("chat-title");
  const title = h("h2", { id: titleId, tabindex: -1 }, summary.title);
  const renameBtn = h("button", { type: "button", class: "secondary small" }, "Rename");
  const deleteBtn = h("button", { type: "button", class: "danger small" }, "Delete");
  const actions = h("div", { class: "chat-actions" }, renameBtn, deleteBtn);
  const header = h("header", { class: "chat-header" }, title, actions);
  const list = h("ol", { class: "turns", "aria-label": "Messages" });
  const earlier = h("button", { type: "button", class: "secondary small load-earlier", onclick: () => void loadEarlier() }, "Load earlier messages");
  const empty = h("p", { class: "empty" }, "No messages yet. Try “a red circle”.");
  const scroller = h("div", { class: "scroller" }, earlier, empty, list);
  const composer = createComposer(send, callbacks.onError);
  const el = h("section", { class: "chat", "aria-labelledby": titleId }, header, scroller, composer.el);

  const turnCallbacks = {
    onEditImage: (image: Parameters<typeof composer.attach>[0]) => composer.attach(image, "EDIT"),
    onError: callbacks.onError,
  };

  function viewFor(turn: Turn): TurnView {
    let view = views.get(turn.id);
    if (view === undefined) {
      view = createTurnView(turn, turnCallbacks);
      views.set(turn.id, view);
    }
    return view;
  }

  function showEarlier(hasPrevious: boolean): void {
    earlier.hidden = !hasPrevious;
    empty.hidden = views.size > 0;
  }

  function appendTurns(turns: Turn[]): void {
    const nearBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    for (const turn of turns) {
      if (views.has(turn.id)) continue;
      // By position: a turn pushed over the WebSocket may overtake the HTTP answer that holds its predecessor.
      const next = [...views.values()].filter((v) => v.turn.position > turn.position).sort((a, b) => a.turn.position - b.turn.position)[0];
      list.insertBefore(viewFor(turn).el, next?.el ?? null);
    }
    empty.hidden = views.size > 0;
    if (nearBottom || turns.some((t) => t.role === "USER")) requestAnimationFrame(() => (scroller.scrollTop = scroller.scrollHeight));
  }

  async function loadEarlier(): Promise<void> {
    earlier.disabled = true;
    try {
      const page = await gql<Page>(CONVERSATION, { id, last: PAGE, before });
      const first = list.firstElementChild;
      const height = scroller.scrollHeight;
      for (const turn of page.conversation.turns.nodes) if (!views.has(turn.id)) list.insertBefore(viewFor(turn).el, first);
      before = page.conversation.turns.pageInfo.startCursor;
      showEarlier(page.conversation.turns.pageInfo.hasPreviousPage);
      scroller.scrollTop += scroller.scrollHeight - height; // keep the reader's place
    } catch (e) {
      callbacks.onError(describeError(e));
    } finally {
      earlier.disabled = false;
    }
  }

  async function send(message: Message): Promise<void> {
    const input: Record<string, unknown> = { conversationId: id, text: message.text, task: message.task };
    if (message.imageIds.length > 0) input.imageIds = message.imageIds;
    if (Object.keys(message.params).length > 0) input.params = message.params;
    const result = await gql<{ sendMessage: { userTurn: Turn; assistantTurn: Turn } }>(SEND_MESSAGE, { input });
    appendTurns([result.sendMessage.userTurn, result.sendMessage.assistantTurn]);
    callbacks.onChanged({ ...summary, updatedAt: new Date().toISOString() });
  }

  function startRename(): void {
    const inputId = uid("rename");
    const input = h("input", { id: inputId, value: summary.title, maxlength: 200, required: true });
    const form = h(
      "form",
      { class: "rename" },
      h("label", { for: inputId, class: "visually-hidden" }, "Conversation title"),
      input,
      h("button", { type: "submit", class: "primary small" }, "Save"),
      h("button", { type: "button", class: "secondary small", onclick: () => endRename() }, "Cancel"),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const next = input.value.trim();
      if (!next) return;
      gql<{ renameConversation: ConversationSummary }>(RENAME_CONVERSATION, { id, title: next }).then(
        (r) => {
          setSummary(r.renameConversation);
          endRename();
        },
        (err) => callbacks.onError(describeError(err)),
      );
    });
    form.addEventListener("keydown", (e: KeyboardEvent) => e.key === "Escape" && endRename());
    header.replaceChildren(form);
    input.select();
  }

  function endRename(): void {
    header.replaceChildren(title, actions);
    renameBtn.focus();
  }

  function confirmDelete(): void {
    const yes = h("button", { type: "button", class: "danger small" }, "Delete for good");
    const no = h("button", { type: "button", class: "secondary small" }, "Keep");
    const box = h("div", { class: "confirm", role: "group", "aria-label": "Confirm deletion" }, h("span", {}, "Delete this conversation and all its messages?"), yes, no);
    no.addEventListener("click", () => {
      actions.replaceChildren(renameBtn, deleteBtn);
      deleteBtn.focus();
    });
    yes.addEventListener("click", () => {
      yes.disabled = true;
      gql(DELETE_CONVERSATION, { id }).then(
        () => callbacks.onDeleted(id),
        (err) => {
          yes.disabled = false;
          callbacks.onError(describeError(err));
        },
      );
    });
    actions.replaceChildren(box);
    no.focus();
  }

  function setSummary(next: ConversationSummary): void {
    summary = next;
    title.textContent = next.title;
    document.title = `${next.title} · UniPic Studio`;
    callbacks.onChanged(next);
  }

  renameBtn.addEventListener("click", startRename);
  deleteBtn.addEventListener("click", confirmDelete);

  // Drag and drop anywhere on the conversation attaches the images.
  el.addEventListener("dragover", (e: DragEvent) => {
    if (!e.dataTransfer?.types.includes("Files")) return;
    e.preventDefault();
    el.classList.add("dropping");
  });
  el.addEventListener("dragleave", (e: DragEvent) => {
    if (e.target === el || !el.contains(e.relatedTarget as Node | null)) el.classList.remove("dropping");
  });
  el.addEventListener("drop", (e: DragEvent) => {
    e.preventDefault();
    el.classList.remove("dropping");
    composer.addFiles(Array.from(e.dataTransfer?.files ?? []));
  });

  const stop = subscribe<{ conversationUpdated: { kind: string; conversation: ConversationSummary | null; turn: Turn | null } }>(
    CONVERSATION_UPDATED,
    { id },
    ({ conversationUpdated: event }) => {
      if (event.kind === "DELETED") callbacks.onDeleted(id);
      else if (event.kind === "RENAMED" && event.conversation && event.conversation.title !== summary.title) setSummary(event.conversation);
      else if (event.kind === "TURN_ADDED" && event.turn) appendTurns([event.turn]);
    },
    () => undefined, // Turn subscriptions report connection problems already.
  );

  fill(list);
  appendTurns(data.conversation.turns.nodes);
  showEarlier(data.conversation.turns.pageInfo.hasPreviousPage);
  document.title = `${summary.title} · UniPic Studio`;

  return {
    el,
    id,
    dispose() {
      stop();
      for (const view of views.values()) view.dispose();
    },
  };
}
