/// <reference lib="dom" />
/**
 * The web client's entry: sign-in (the form, or `/?key=KEY` which is then removed from the
 * address bar), the conversation list, and the open conversation (in the URL hash, so reloads
 * and the back button keep it).
 */
import "./styles.css";
import { clearKey, describeError, getKey, gql, setKey, setUnauthenticatedHandler } from "./api.js";
import { openChat, type Chat } from "./chat.js";
import { fill, h } from "./dom.js";
import { CONVERSATIONS, CREATE_CONVERSATION, VIEWER, type ConversationSummary } from "./queries.js";

const root = document.getElementById("app")!;
const alerts = h("div", { class: "alerts", role: "alert" });

function showError(message: string): void {
  const close = h("button", { type: "button", class: "link", "aria-label": "Dismiss message" }, "Dismiss");
  const item = h("p", { class: "alert" }, h("span", {}, message), close);
  close.addEventListener("click", () => item.remove());
  alerts.replaceChildren(item); // one at a time: the latest is the one that matters
}

function clearErrors(): void {
  alerts.replaceChildren();
}

// ---- sign-in ------------------------------------------------------------------------------

function signInPage(message?: string): void {
  document.title = "Sign in · UniPic Studio";
  const input = h("input", { id: "api-key", name: "key", type: "password", autocomplete: "off", spellcheck: "false", required: true, "aria-describedby": "api-key-hint" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin" },
    h("h1", {}, "UniPic Studio"),
    h("p", {}, "Generate, edit and understand images in one conversation."),
    h("label", { for: "api-key" }, "API key"),
    input,
    h("small", { id: "api-key-hint" }, "The server printed it at first start (", h("code", {}, "API key: upk_…"), "). New users: ", h("code", {}, "npx unipic users add NAME"), "."),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit.disabled = true;
    void signIn(input.value.trim()).finally(() => (submit.disabled = false));
  });
  fill(root, h("main", { class: "center" }, alerts, form));
  if (message) showError(message);
  input.focus();
}

async function signIn(key: string): Promise<void> {
  try {
    const data = await gql<{ viewer: { name: string } }>(VIEWER, {}, key);
    setKey(key);
    clearErrors();
    await appPage(data.viewer.name);
  } catch (e) {
    signInPage(describeError(e));
  }
}

function signOut(message?: string): void {
  chat?.dispose();
  chat = undefined;
  clearKey();
  history.replaceState(null, "", location.pathname);
  signInPage(message);
}

// ---- the app ------------------------------------------------------------------------------

let chat: Chat | undefined;
let conversations: ConversationSummary[] = [];
let after: string | null = null;
let hasMore = false;
const convList = h("ul", { class: "conversations" });
const moreBtn = h("button", { type: "button", class: "link", onclick: () => void loadConversations(true) }, "Show older conversations");
const main = h("main", { id: "main", class: "main", tabindex: -1 });
const sidebar = h("nav", { class: "sidebar", "aria-label": "Conversations", id: "sidebar" });
const menuBtn = h("button", { type: "button", class: "secondary small menu", "aria-controls": "sidebar", "aria-expanded": "false" }, "Conversations");

function currentId(): string | null {
  const m = /^#\/c\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]!) : null;
}

function renderList(): void {
  const current = currentId();
  fill(
    convList,
    conversations.map((c) =>
      h("li", {}, h("a", { href: `#/c/${encodeURIComponent(c.id)}`, "aria-current": c.id === current ? "page" : null, onclick: () => setMenu(false) }, c.title)),
    ),
  );
  moreBtn.hidden = !hasMore;
}

async function loadConversations(more = false): Promise<void> {
  const data = await gql<{ conversations: { nodes: ConversationSummary[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } }>(CONVERSATIONS, {
    first: 50,
    after: more ? after : null,
  });
  conversations = more ? [...conversations, ...data.conversations.nodes] : data.conversations.nodes;
  after = data.conversations.pageInfo.endCursor;
  hasMore = data.conversations.pageInfo.hasNextPage;
  renderList();
}

function upsert(c: ConversationSummary): void {
  conversations = [c, ...conversations.filter((x) => x.id !== c.id)];
  renderList();
}

async function newConversation(): Promise<void> {
  try {
    const data = await gql<{ createConversation: ConversationSummary }>(CREATE_CONVERSATION, {});
    upsert(data.createConversation);
    setMenu(false);
    location.hash = `#/c/${encodeURIComponent(data.createConversation.id)}`;
  } catch (e) {
    showError(describeError(e));
  }
}

function setMenu(open: boolean): void {
  sidebar.classList.toggle("open", open);
  menuBtn.setAttribute("aria-expanded", String(open));
}

function welcome(): HTMLElement {
  return h(
    "section",
    { class: "welcome", "aria-labelledby": "welcome-title" },
    h("h2", { id: "welcome-title" }, "Start a conversation"),
    h("p", {}, "Ask for an image (“a red circle”), then change it (“make the circle blue”) or ask about it (“what color is the circle?”)."),
    h("button", { type: "button", class: "primary", onclick: () => void newConversation() }, "New conversation"),
  );
}

/** `focus`: after navigation, move focus to the conversation's title (not on first load, where the skip link comes first). */
async function route(focus = false): Promise<void> {
  const id = currentId();
  renderList();
  if (chat?.id === id && id !== null) return;
  chat?.dispose();
  chat = undefined;
  clearErrors();
  if (id === null) {
    document.title = "UniPic Studio";
    fill(main, welcome());
    return;
  }
  fill(main, h("p", { class: "loading", role: "status" }, "Loading…"));
  try {
    const opened = await openChat(id, {
      onError: showError,
      onChanged: upsert,
      onDeleted: (gone) => {
        conversations = conversations.filter((c) => c.id !== gone);
        location.hash = "";
      },
    });
    if (currentId() !== id) return opened.dispose(); // the user moved on while it loaded
    chat = opened;
    fill(main, opened.el);
    if (focus) opened.el.querySelector("h2")?.focus({ preventScroll: true });
  } catch (e) {
    fill(main, welcome());
    showError(describeError(e));
  }
}

async function appPage(name: string): Promise<void> {
  const signOutBtn = h("button", { type: "button", class: "secondary small", onclick: () => signOut() }, "Sign out");
  menuBtn.onclick = () => setMenu(!sidebar.classList.contains("open"));
  fill(
    sidebar,
    h("button", { type: "button", class: "primary wide", onclick: () => void newConversation() }, "New conversation"),
    h("h2", { class: "visually-hidden" }, "Your conversations"),
    convList,
    moreBtn,
    h("p", { class: "sidebar-foot" }, h("a", { href: "/graphiql" }, "GraphiQL"), " · the API explorer, signed in with this key"),
  );
  fill(
    root,
    h("a", { href: "#main", class: "skip", onclick: (e: Event) => (e.preventDefault(), main.focus()) }, "Skip to conversation"),
    h(
      "header",
      { class: "topbar" },
      menuBtn,
      h("h1", {}, "UniPic Studio"),
      h("span", { class: "spacer" }),
      h("span", { class: "user" }, "Signed in as ", h("strong", {}, name)),
      h("a", { href: "/graphiql", class: "button secondary small graphiql-link" }, "GraphiQL"),
      signOutBtn,
    ),
    h("div", { class: "layout" }, sidebar, h("div", { class: "content" }, alerts, main)),
  );
  await loadConversations();
  await route();
}

// ---- start --------------------------------------------------------------------------------

setUnauthenticatedHandler(() => signOut("That API key is no longer accepted. Sign in again."));
window.addEventListener("hashchange", () => void route(true));

const params = new URLSearchParams(location.search);
const linkKey = params.get("key");
if (linkKey !== null) {
  // The key must not stay in the address bar, the history or a bookmark.
  params.delete("key");
  const rest = params.toString();
  history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
}
const key = linkKey ?? getKey();
if (key) void signIn(key);
else signInPage();
