/** GET /v1/models and /v1/models/{id}: the one loaded model, under its manifest's name. */
import { stat } from "node:fs/promises";
import path from "node:path";
import type { ServerResponse } from "node:http";
import { AppError, ErrorCode } from "../../errors.js";
import type { Manifest } from "../../engine/manifest.js";
import { sendJson } from "../http.js";
import type { Services } from "../../turns/service.js";

/** `created` is when the model folder's manifest was written (the manifest holds no date). */
async function modelObject(manifest: Manifest) {
  const written = await stat(path.join(manifest.dir, "manifest.json")).then((s) => Math.floor(s.mtimeMs / 1000), () => 0);
  return { id: manifest.name, object: "model", created: written, owned_by: "unipic-studio" };
}

/** Without a loaded model (ENGINE=off) the list is empty: nothing could serve a request. */
export async function handleListModels(res: ServerResponse, services: Services): Promise<void> {
  const data = services.model === null ? [] : [await modelObject(services.model)];
  sendJson(res, 200, { object: "list", data });
}

export async function handleGetModel(res: ServerResponse, services: Services, id: string): Promise<void> {
  if (services.model === null || services.model.name !== id) {
    throw new AppError(ErrorCode.NOT_FOUND, `The model ${JSON.stringify(id)} does not exist`, { field: "model", expected: services.model?.name ?? "no model is loaded", got: id });
  }
  sendJson(res, 200, await modelObject(services.model));
}
