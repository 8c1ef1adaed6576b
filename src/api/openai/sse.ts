/**
 * Server-sent events as OpenAI streams them: `data: <json>` frames (with an `event:` line where
 * OpenAI names its events; the client reads the name from the JSON `type` field either way), a
 * `data: [DONE]` terminator for chat, and an `{"error": ...}` frame for a failure after the
 * stream began, which the SDKs raise as an APIError.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { toOpenAIError } from "./errors.js";

/** A comment line now and then keeps proxies from closing a stream that waits in the queue. */
const HEARTBEAT_MS = 15_000;

/**
 * Opened lazily: a request that fails before its job is admitted (a full queue, a dead engine)
 * still gets a real HTTP status, which SDKs turn into their error classes (and retry on 429).
 */
export class EventStream {
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string> = {},
  ) {}

  get opened(): boolean {
    return this.res.headersSent;
  }

  /** Sends the headers now (once), so the client sees the stream open before the first event. */
  open(): void {
    if (this.opened) return;
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // nginx and similar proxies buffer responses unless told not to.
      "x-accel-buffering": "no",
      ...this.headers,
    });
    this.res.flushHeaders();
    // Small frames must not wait for Nagle's algorithm to batch them.
    this.req.socket.setNoDelay(true);
    this.heartbeat = setInterval(() => void this.write(": keep-alive\n\n"), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Whether the client has gone (or the stream ended). */
  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  /** One event; `name` adds an `event:` line (OpenAI's image streams have one, chat has none). */
  send(data: unknown, name?: string): Promise<void> {
    this.open();
    return this.write(`${name === undefined ? "" : `event: ${name}\n`}data: ${JSON.stringify(data)}\n\n`);
  }

  done(): Promise<void> {
    this.open();
    return this.write("data: [DONE]\n\n");
  }

  /**
   * Reports a failure: thrown on to the edge (a plain HTTP error) while nothing was sent, else as
   * an error frame (the status line is gone), and ends the stream.
   */
  async fail(error: unknown, production: boolean): Promise<void> {
    if (!this.opened) throw error;
    const { body } = toOpenAIError(error, production);
    await this.send({ type: "error", ...body }, "error");
    this.end();
  }

  end(): void {
    clearInterval(this.heartbeat);
    if (!this.closed) this.res.end();
  }

  /** Writes a frame; waits for the socket to drain (large images), or for the client to leave. */
  private write(text: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.res.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off("drain", done);
        this.res.off("close", done);
        resolve();
      };
      this.res.once("drain", done);
      this.res.once("close", done);
    });
  }
}
