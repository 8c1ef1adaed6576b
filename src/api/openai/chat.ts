/**
 * POST /v1/chat/completions, answered by the model's understanding of an image. The request's
 * messages become one conversation: earlier messages as finished turns (the model reads them as
 * history), the last user message as the question with its image, and the answer as the reply
 * turn. Images come as data URLs or as this server's own image URLs; remote URLs are never
 * fetched (the server must not be a proxy to arbitrary hosts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, ErrorCode } from "../../errors.js";
import type { NewHistoryTurn, TurnRow, UserRow } from "../../store/index.js";
import { sendJson, storeUpload } from "../http.js";
import { isSha256, parseGlobalId } from "../ids.js";
import type { Services } from "../../turns/service.js";
import { Task, TurnEventKind } from "../types/enums.js";
import { checkModel, optionalBool, optionalInt, optionalSeed, readJsonBody, requestOrigin, type Body } from "./parse.js";
import { EventStream } from "./sse.js";
import { cancelOnDisconnect, completed, finalTurn, historyHeaders, requireEngine, startTurns, titleOf, type StartedTurns } from "./turns.js";
import { chatUsage } from "./usage.js";

/** Earlier messages the model reads as history (the runner's own window). */
const HISTORY_WINDOW = 8;
const MAX_TOKENS = 4096;

interface Message {
  role: "user" | "assistant";
  text: string;
  /** Ids of its images, stored by the time the request is parsed. */
  images: string[];
}

interface ChatRequest {
  messages: Message[];
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number;
  seed?: number;
}

/** A data: URL's image, or an image of this server addressed by its URL; stored as the user's upload. */
async function imageFromUrl(req: IncomingMessage, services: Services, user: UserRow, url: unknown, param: string): Promise<string> {
  if (typeof url !== "string") throw AppError.badInput(param, "a data: URL or an image URL of this server", url);
  const data = /^data:image\/[a-z+.-]+;base64,/i.exec(url);
  if (data !== null) {
    const bytes = Buffer.from(url.slice(data[0].length), "base64");
    try {
      return (await storeUpload(services, user, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))).id;
    } catch (error) {
      // Name the message part at fault, as the client wrote it, not the upload's own field.
      if (!(error instanceof AppError) || error.code === ErrorCode.INTERNAL) throw error;
      throw new AppError(error.code, `${param}: ${error.message}`, { field: param, expected: error.expected, got: error.got });
    }
  }
  let parsed: URL | null = null;
  try {
    parsed = new URL(url, requestOrigin(req));
  } catch {
    // reported below
  }
  const ours = parsed !== null && parsed.host === new URL(requestOrigin(req)).host && parsed.pathname.startsWith("/images/");
  if (!ours) throw AppError.badInput(param, "a data: URL or an image URL of this server (remote images are not fetched)", url);
  const name = decodeURIComponent(parsed!.pathname.slice("/images/".length));
  const stem = name.includes(".") ? name.slice(0, name.lastIndexOf(".")) : name;
  const id = isSha256(stem) ? stem : parseGlobalId(stem)?.type === "Image" ? parseGlobalId(stem)!.key : null;
  if (id === null || !(await services.store.images.visibleTo(user.id, id))) {
    throw new AppError(ErrorCode.NOT_FOUND, `${param}: image not found`, { field: param });
  }
  return id;
}

/** Checks the messages and stores their images; system and developer messages are dropped (the model has no system turn). */
async function parseMessages(req: IncomingMessage, services: Services, user: UserRow, raw: unknown): Promise<Message[]> {
  const { limits } = services.config;
  if (!Array.isArray(raw) || raw.length === 0) throw AppError.badInput("messages", "a non-empty array of messages", raw);
  const imageCount = raw.reduce<number>((n, m) => n + (Array.isArray(m?.content) ? m.content.filter((p: Body) => p?.type === "image_url").length : 0), 0);
  if (imageCount > limits.maxImagesPerMessage) throw AppError.limit("messages", `at most ${limits.maxImagesPerMessage} images in a request`, `${imageCount} images`);
  const out: Message[] = [];
  for (const [i, m] of (raw as Body[]).entries()) {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== "object") throw AppError.badInput(at, "a message object", m);
    if (m.role === "system" || m.role === "developer") continue;
    if (m.role !== "user" && m.role !== "assistant") throw AppError.badInput(`${at}.role`, "user, assistant, system or developer (no tools)", m.role);
    const texts: string[] = [];
    const images: string[] = [];
    if (typeof m.content === "string") texts.push(m.content);
    else if (Array.isArray(m.content)) {
      for (const [j, part] of (m.content as Body[]).entries()) {
        const where = `${at}.content[${j}]`;
        if (part?.type === "text" && typeof part.text === "string") texts.push(part.text);
        else if (part?.type === "image_url" && m.role === "user") images.push(await imageFromUrl(req, services, user, (part.image_url as Body | undefined)?.url, `${where}.image_url.url`));
        else throw AppError.badInput(where, m.role === "user" ? "a text or image_url part" : "a text part", part?.type ?? part);
      }
    } else if (!(m.role === "assistant" && (m.content === null || m.content === undefined))) {
      throw AppError.badInput(`${at}.content`, "a string or an array of content parts", m.content);
    }
    const text = texts.join("\n");
    if (text.length > limits.maxPromptChars) throw AppError.limit(`${at}.content`, `at most ${limits.maxPromptChars} characters`, `${text.length} characters`);
    out.push({ role: m.role, text, images });
  }
  const last = out.at(-1);
  if (last === undefined || last.role !== "user" || last.text.trim().length === 0) {
    throw AppError.badInput("messages", "a last message from the user with a question about an image", last?.role ?? "no user message");
  }
  return out;
}

async function parseChatRequest(req: IncomingMessage, services: Services, user: UserRow, body: Body): Promise<ChatRequest> {
  checkModel(body, services.model!);
  // One answer per question: the model answers greedily, so more choices would be copies.
  optionalInt(body, "n", 1, 1);
  const options = body.stream_options as Body | null | undefined;
  const maxTokens = optionalInt(body, "max_completion_tokens", 1, MAX_TOKENS) ?? optionalInt(body, "max_tokens", 1, MAX_TOKENS) ?? services.model!.maxNewTokens;
  return {
    stream: optionalBool(body, "stream"),
    includeUsage: options?.include_usage === true,
    maxTokens,
    seed: optionalSeed(body),
    // Last: it stores the images, after every cheap check has passed.
    messages: await parseMessages(req, services, user, body.messages),
  };
}

export async function handleChatCompletion(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow): Promise<void> {
  requireEngine(services);
  const { limits } = services.config;
  // Room for the allowed number of base64 images, plus the text around them.
  const bodyLimit = Math.max(1, limits.maxImagesPerMessage) * Math.ceil((limits.maxUploadBytes * 4) / 3 + 1024) + 1024 * 1024;
  const request = await parseChatRequest(req, services, user, await readJsonBody(req, bodyLimit));
  const question = request.messages.at(-1)!;
  // The image asked about: the question's own, else the latest earlier one (as GraphQL's AUTO does).
  const imageId = question.images[0] ?? request.messages.flatMap((m) => m.images).at(-1);
  if (imageId === undefined) throw AppError.badInput("messages", "an image to ask about (an image_url part in a user message)", "no image");
  const history: NewHistoryTurn[] = request.messages.slice(0, -1).map((m) => ({ role: m.role, text: m.text, imageIds: m.images }));
  const started = await startTurns(services, user, {
    title: titleOf("Chat", question.text),
    text: question.text,
    task: Task.UNDERSTAND,
    imageIds: [imageId],
    params: { maxTokens: request.maxTokens, seed: request.seed },
    replies: 1,
    history,
  });
  cancelOnDisconnect(res, started);
  const usage = async (answer: string) =>
    chatUsage(services.model!, question.text, history.filter((h) => h.text !== "").slice(-HISTORY_WINDOW), answer);
  try {
    if (request.stream) await streamChat(req, res, services, request, started, usage);
    else {
      const turn = completed(await finalTurn(started.events[0]!));
      const counted = await usage(turn.text);
      sendJson(res, 200, {
        ...envelope(started.replies[0]!, services.model!.name, "chat.completion"),
        choices: [{ index: 0, message: { role: "assistant", content: turn.text, refusal: null }, finish_reason: finishReason(counted.completion_tokens, request.maxTokens), logprobs: null }],
        usage: counted,
      }, historyHeaders(started));
    }
  } finally {
    await started.close();
  }
}

async function streamChat(
  req: IncomingMessage,
  res: ServerResponse,
  services: Services,
  request: ChatRequest,
  started: StartedTurns,
  usage: (answer: string) => ReturnType<typeof chatUsage>,
): Promise<void> {
  const stream = new EventStream(req, res, historyHeaders(started));
  const base = envelope(started.replies[0]!, services.model!.name, "chat.completion.chunk");
  const chunk = (delta: Body, finish: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
  let sent = "";
  let last: TurnRow = started.replies[0]!;
  // A TOKEN event's turn.text is the whole answer so far: send what is new in it (for a slow reader
  // the hub has joined the unread deltas, so this is the same text as the deltas).
  const sendText = async (text: string): Promise<void> => {
    if (!text.startsWith(sent) || text.length === sent.length) return;
    await stream.send(chunk({ content: text.slice(sent.length) }));
    sent = text;
  };
  try {
    for await (const event of started.events[0]!) {
      last = event.turn;
      if (event.kind === TurnEventKind.SNAPSHOT || event.turn.status === "FAILED" || event.turn.status === "CANCELLED") continue;
      if (!stream.opened) await stream.send(chunk({ role: "assistant", content: "" }));
      if (event.kind === TurnEventKind.TOKEN) await sendText(event.turn.text);
    }
    const turn = completed(last);
    await sendText(turn.text);
    const counted = await usage(turn.text);
    await stream.send(chunk({}, finishReason(counted.completion_tokens, request.maxTokens)));
    if (request.includeUsage) await stream.send({ ...base, choices: [], usage: counted });
    await stream.done();
  } catch (error) {
    await started.cancel();
    await stream.fail(error, services.config.production);
    return;
  }
  stream.end();
}

function envelope(turn: TurnRow, model: string, object: string) {
  return { id: `chatcmpl-${turn.id}`, object, created: Math.floor(turn.createdAt.getTime() / 1000), model };
}

function finishReason(completionTokens: number, maxTokens: number): "stop" | "length" {
  return completionTokens >= maxTokens ? "length" : "stop";
}
