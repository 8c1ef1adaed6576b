/// <reference lib="dom" />
/**
 * The client's only ways to the server: POST /graphql, graphql-ws on /graphql, POST /images and
 * GET /images/*. Every one carries the API key from localStorage (the GraphiQL page reads the
 * same entry), and image bytes are fetched with it too, since <img src> cannot send headers.
 */
import { createClient, type Client } from "graphql-ws";

export const KEY_STORAGE = "unipic.apiKey";

export function getKey(): string | null {
  return localStorage.getItem(KEY_STORAGE);
}

export function setKey(key: string): void {
  localStorage.setItem(KEY_STORAGE, key);
}

export function clearKey(): void {
  localStorage.removeItem(KEY_STORAGE);
  ws?.dispose();
  ws = undefined;
  for (const url of imageCache.values()) void url.then((u) => URL.revokeObjectURL(u), () => undefined);
  imageCache.clear();
}

/** An error the API reported, with its machine code kept for decisions (sign out on UNAUTHENTICATED). */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly expected?: string,
    readonly got?: string,
  ) {
    super(message);
  }
}

let onUnauthenticated: () => void = () => undefined;
/** Called when the server rejects the key (revoked, mistyped): the app signs out. */
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

function authHeaders(key = getKey()): Record<string, string> {
  return key === null ? {} : { authorization: `Bearer ${key}` };
}

function toApiError(raw: { code?: string; message?: string; field?: string; expected?: string; got?: string } | undefined, status: number): ApiError {
  const error = new ApiError(raw?.code ?? (status >= 500 ? "INTERNAL" : "HTTP_ERROR"), raw?.message ?? `The server answered ${status}.`, raw?.field, raw?.expected, raw?.got);
  if (error.code === "UNAUTHENTICATED") onUnauthenticated();
  return error;
}

/** One query or mutation over HTTP; throws ApiError with the first error's extensions. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}, key?: string): Promise<T> {
  let res: Response;
  try {
    res = await fetch("/graphql", {
      method: "POST",
      headers: { ...authHeaders(key ?? getKey()), "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("NETWORK", "The server could not be reached.");
  }
  let body: { data?: T; errors?: Array<{ message: string; extensions?: Record<string, any> }> };
  try {
    body = await res.json();
  } catch {
    throw toApiError(undefined, res.status);
  }
  const first = body.errors?.[0];
  if (first) throw toApiError({ ...first.extensions, message: first.message }, res.status);
  return body.data as T;
}

export interface Uploaded {
  id: string;
  sha256: string;
  url: string;
  width: number;
  height: number;
  mime: string;
}

/** POST /images with the raw file; the server checks type and size and answers with the image. */
export async function upload(file: Blob): Promise<Uploaded> {
  let res: Response;
  try {
    res = await fetch("/images", { method: "POST", headers: { ...authHeaders(), "content-type": file.type || "application/octet-stream" }, body: file });
  } catch {
    throw new ApiError("NETWORK", "The upload could not reach the server.");
  }
  const body = await res.json().catch(() => undefined);
  if (!res.ok) throw toApiError(body?.error, res.status);
  return body as Uploaded;
}

const imageCache = new Map<string, Promise<string>>();

/** An object URL for an image route, fetched once with the key (images are content-addressed). */
export function imageUrl(url: string): Promise<string> {
  if (url.startsWith("data:") || url.startsWith("blob:")) return Promise.resolve(url);
  let cached = imageCache.get(url);
  if (cached === undefined) {
    cached = fetch(url, { headers: authHeaders() }).then(async (res) => {
      if (!res.ok) throw toApiError((await res.json().catch(() => undefined))?.error, res.status);
      return URL.createObjectURL(await res.blob());
    });
    cached.catch(() => imageCache.delete(url));
    imageCache.set(url, cached);
  }
  return cached;
}

let ws: Client | undefined;

/** The shared graphql-ws client, connected lazily on the first subscription. */
export function subscriptions(): Client {
  ws ??= createClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => authHeaders(),
    on: {
      closed: (event) => {
        if ((event as CloseEvent).code === 4403) onUnauthenticated();
      },
    },
  });
  return ws;
}

/** Subscribes; returns the function that stops it. */
export function subscribe<T>(query: string, variables: Record<string, unknown>, next: (data: T) => void, error: (e: ApiError) => void): () => void {
  return subscriptions().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) {
          const first = result.errors[0]!;
          error(toApiError({ ...(first.extensions as Record<string, any>), message: first.message }, 200));
        } else if (result.data) next(result.data as T);
      },
      error: (e) => error(e instanceof ApiError ? e : new ApiError("NETWORK", "The live connection to the server was lost.")),
      complete: () => undefined,
    },
  );
}

const FRIENDLY: Record<string, string> = {
  UNAUTHENTICATED: "That API key was not accepted. Sign in again with a valid key.",
  FORBIDDEN: "This key is not allowed to do that.",
  NOT_FOUND: "That item no longer exists (it may have been deleted).",
  NETWORK: "The server could not be reached. Check that it is running.",
  PAYLOAD_TOO_LARGE: "That file is too large to upload.",
  UNSUPPORTED_MEDIA: "That file type is not supported. Use PNG, JPEG or WebP.",
  QUEUE_FULL: "The server is busy (its queue is full). Try again in a moment.",
  ENGINE_DEAD: "The model engine stopped. Ask the server's operator to restart it.",
  UNAVAILABLE: "The model is not available right now.",
  INTERNAL: "Something went wrong on the server. Try again.",
};

/** Plain words for an error, naming the field and what was expected for bad input. */
export function describeError(error: unknown): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  if (FRIENDLY[error.code] !== undefined) return FRIENDLY[error.code]!;
  if (error.field !== undefined && error.expected !== undefined) {
    const got = error.got !== undefined ? ` (got ${error.got})` : "";
    return `${labelOf(error.field)}: expected ${error.expected}${got}.`;
  }
  return error.message;
}

/** "input.params.steps" -> "Steps", so messages speak the form's language. */
function labelOf(field: string): string {
  const last = field.split(".").pop() ?? field;
  const words = last.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
