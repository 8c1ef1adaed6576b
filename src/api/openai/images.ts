/**
 * POST /v1/images/generations and /v1/images/edits. A call is one conversation: the prompt (with
 * the uploaded source for an edit) is the user turn, each of the `n` images a reply turn with its
 * own seed. Answers are OpenAI's ImagesResponse, or with `stream: true` its image-streaming events:
 * up to `partial_images` partial images made from the MAR previews, then one completed image.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError } from "../../errors.js";
import type { Manifest } from "../../engine/manifest.js";
import type { UserRow } from "../../store/index.js";
import { sendJson, storeUpload } from "../http.js";
import type { TurnHubEvent } from "../../turns/events.js";
import { MAX_REPLIES, type Services } from "../../turns/service.js";
import { PreviewMethod, Task, TurnEventKind } from "../types/enums.js";
import {
  checkModel,
  optionalBool,
  optionalChoice,
  optionalInt,
  optionalSeed,
  parseSize,
  readForm,
  readJsonBody,
  requestOrigin,
  requiredText,
  type Body,
} from "./parse.js";
import { EventStream } from "./sse.js";
import { cancelOnDisconnect, completed, finalTurn, historyHeaders, outputImage, requireEngine, startTurns, titleOf, type StartedTurns } from "./turns.js";
import { imageUsage, sumImageUsage } from "./usage.js";

/** OpenAI allows 0-3 partial images per image. */
const MAX_PARTIAL_IMAGES = 3;
const JSON_BODY_LIMIT = 1024 * 1024;

type ImageKind = "generate" | "edit";

interface ImageRequest {
  kind: ImageKind;
  prompt: string;
  n: number;
  /** Output side in pixels, one of the model's resolutions. */
  size: number;
  responseFormat: "b64_json" | "url";
  stream: boolean;
  partialImages: number;
  seed?: number;
}

/** The fields both endpoints share, checked against the model and the server's limits. */
function parseImageRequest(body: Body, kind: ImageKind, manifest: Manifest, maxPromptChars: number): ImageRequest {
  checkModel(body, manifest);
  // What unipic cannot honour is refused rather than silently ignored.
  optionalChoice(body, "output_format", ["png"]);
  optionalChoice(body, "background", ["auto", "opaque"]);
  return {
    kind,
    prompt: requiredText(body, "prompt", maxPromptChars),
    n: optionalInt(body, "n", 1, MAX_REPLIES) ?? 1,
    size: parseSize(body, manifest),
    responseFormat: optionalChoice(body, "response_format", ["b64_json", "url"]) ?? "b64_json",
    stream: optionalBool(body, "stream"),
    partialImages: optionalInt(body, "partial_images", 0, MAX_PARTIAL_IMAGES) ?? 0,
    seed: optionalSeed(body),
  };
}

export async function handleImageGeneration(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow): Promise<void> {
  requireEngine(services);
  const body = await readJsonBody(req, JSON_BODY_LIMIT);
  const request = parseImageRequest(body, "generate", services.model!, services.config.limits.maxPromptChars);
  await answer(req, res, services, user, request, []);
}

export async function handleImageEdit(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow): Promise<void> {
  requireEngine(services);
  const { fields, files } = await readForm(req, services.config.limits.maxUploadBytes);
  const request = parseImageRequest(fields, "edit", services.model!, services.config.limits.maxPromptChars);
  if (files.some((f) => f.field === "mask")) throw AppError.badInput("mask", "no mask: unipic edits the whole image from the instruction", "a mask");
  const images = files.filter((f) => f.field === "image" || f.field === "image[]");
  if (images.length !== 1) throw AppError.badInput("image", "exactly one image file (PNG, JPEG or WebP)", `${images.length} images`);
  const source = await storeUpload(services, user, images[0]!.bytes);
  await answer(req, res, services, user, request, [source.id]);
}

/** Stores the call as turns, then answers from their events (JSON, or a stream). */
async function answer(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow, request: ImageRequest, imageIds: string[]): Promise<void> {
  const partials = request.stream && request.partialImages > 0;
  const started = await startTurns(services, user, {
    title: titleOf(request.kind === "generate" ? "Image" : "Edit", request.prompt),
    text: request.prompt,
    task: request.kind === "generate" ? Task.GENERATE : Task.EDIT,
    imageIds,
    // Partial images are the runner's linear MAR previews at full size; none are made otherwise.
    params: { resolution: request.size, seed: request.seed, previewMethod: partials ? PreviewMethod.LINEAR : PreviewMethod.NONE, previewSize: request.size },
    replies: request.n,
  });
  cancelOnDisconnect(res, started);
  try {
    if (request.stream) await streamImages(req, res, services, user, request, started);
    else await respondImages(req, res, services, user, request, started);
  } finally {
    await started.close();
  }
}

async function respondImages(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow, request: ImageRequest, started: StartedTurns): Promise<void> {
  const turns = await Promise.all(
    started.events.map(async (events) => {
      const turn = await finalTurn(events);
      // One image failed: the request fails, so the others need not finish.
      if (turn.status !== "COMPLETED") await started.cancel();
      return turn;
    }),
  );
  // Report the cause, not the siblings cancelled because of it.
  const failed = turns.find((t) => t.status === "FAILED") ?? turns.find((t) => t.status !== "COMPLETED");
  if (failed !== undefined) completed(failed);
  const origin = requestOrigin(req);
  const data = await Promise.all(
    turns.map(async (turn) => {
      const image = await outputImage(services, user, turn);
      return request.responseFormat === "url" ? { url: `${origin}/images/${image.meta.id}.png` } : { b64_json: Buffer.from(image.bytes).toString("base64") };
    }),
  );
  const usage = sumImageUsage(await Promise.all(turns.map(() => imageUsage(services.model!, request.kind, request.prompt, request.size))));
  const created = Math.floor(started.replies[0]!.createdAt.getTime() / 1000);
  sendJson(res, 200, { created, data, background: "opaque", output_format: "png", size: `${request.size}x${request.size}`, usage }, historyHeaders(started));
}

async function streamImages(req: IncomingMessage, res: ServerResponse, services: Services, user: UserRow, request: ImageRequest, started: StartedTurns): Promise<void> {
  const stream = new EventStream(req, res, historyHeaders(started));
  const prefix = request.kind === "generate" ? "image_generation" : "image_edit";
  const common = { background: "opaque", output_format: "png", quality: "auto", size: `${request.size}x${request.size}` };
  const usage = await imageUsage(services.model!, request.kind, request.prompt, request.size);
  // With n > 1 the images' events interleave; `index` (as in chat's choices) says whose they are.
  const indexOf = (i: number): { index?: number } => (request.n > 1 ? { index: i } : {});

  const one = async (events: AsyncGenerator<TurnHubEvent, void, undefined>, i: number): Promise<void> => {
    let sent = 0;
    let last = started.replies[i]!;
    for await (const event of events) {
      last = event.turn;
      // Admitted to the engine's queue: open the stream now (admission failures got a status).
      if (event.kind !== TurnEventKind.SNAPSHOT && event.turn.status !== "FAILED" && event.turn.status !== "CANCELLED") stream.open();
      const dataUrl = event.kind === TurnEventKind.STEP ? event.preview?.dataUrl : null;
      if (dataUrl == null || sent >= request.partialImages || !isPartialStep(event.step ?? 0, event.totalSteps ?? 0, sent, request.partialImages)) continue;
      const type = `${prefix}.partial_image`;
      await stream.send({ type, b64_json: dataUrl.slice(dataUrl.indexOf(",") + 1), created_at: nowSeconds(), partial_image_index: sent++, ...common, ...indexOf(i) }, type);
    }
    const image = await outputImage(services, user, completed(last));
    const type = `${prefix}.completed`;
    await stream.send({ type, b64_json: Buffer.from(image.bytes).toString("base64"), created_at: nowSeconds(), ...common, usage, ...indexOf(i) }, type);
  };

  try {
    await Promise.all(started.events.map(one));
  } catch (error) {
    await started.cancel();
    await stream.fail(error, services.config.production);
    return;
  }
  stream.end();
}

/**
 * Partial k (0-based) of `wanted` is due once `step` reaches k+1 of wanted+1 equal parts of the
 * MAR steps; the last step is the image itself, not a partial. Previews are latest-wins for a
 * slow reader, so "reached" rather than "equal": a skipped step still yields its partial.
 */
export function isPartialStep(step: number, total: number, sent: number, wanted: number): boolean {
  if (total <= 0 || step >= total || sent >= wanted) return false;
  return step >= Math.ceil(((sent + 1) * total) / (wanted + 1));
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
