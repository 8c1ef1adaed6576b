/**
 * OpenAI-compatible routes under /v1, beside GraphQL: the same keys, turn service, engine and
 * history. Errors leave in OpenAI's shape (./errors.ts); routes.ts sends them for any /v1 path.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { AppError, ErrorCode } from "../../errors.js";
import { authenticateRequest } from "../http.js";
import type { Services } from "../../turns/service.js";
import { handleChatCompletion } from "./chat.js";
import { handleImageEdit, handleImageGeneration } from "./images.js";
import { handleGetModel, handleListModels } from "./models.js";

export { sendOpenAIError } from "./errors.js";

export function isOpenAIPath(path: string): boolean {
  return path === "/v1" || path.startsWith("/v1/");
}

/** A low-cardinality metrics label for a /v1 path. */
export function openAIRoute(path: string): string {
  if (path === "/v1/models" || path.startsWith("/v1/models/")) return "openai_models";
  if (path === "/v1/images/generations") return "openai_images_generations";
  if (path === "/v1/images/edits") return "openai_images_edits";
  if (path === "/v1/chat/completions") return "openai_chat_completions";
  return "openai_unknown";
}

/** Authenticates (a Bearer API key, as for GraphQL), then serves the route; returns its metrics label. */
export async function handleOpenAI(req: IncomingMessage, res: ServerResponse, services: Services, path: string): Promise<string> {
  const user = await authenticateRequest(req, services);
  const method = req.method ?? "GET";
  const route = openAIRoute(path);
  if (method === "GET" && path === "/v1/models") await handleListModels(res, services);
  else if (method === "GET" && path.startsWith("/v1/models/")) await handleGetModel(res, services, decodeURIComponent(path.slice("/v1/models/".length)));
  else if (method === "POST" && path === "/v1/images/generations") await handleImageGeneration(req, res, services, user);
  else if (method === "POST" && path === "/v1/images/edits") await handleImageEdit(req, res, services, user);
  else if (method === "POST" && path === "/v1/chat/completions") await handleChatCompletion(req, res, services, user);
  else throw new AppError(ErrorCode.NOT_FOUND, `no route for ${method} ${path}`);
  return route;
}
