/**
 * A benchmark's client of one running server (bench-scale.ts, bench-soak.ts): GraphQL over HTTP
 * and graphql-ws, with an API key, as a frontend would. A GraphQL error is thrown with the
 * server's errors as JSON, so their `extensions.code` can be read back from the message.
 */
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

export class BenchApi {
  constructor(
    readonly url: string,
    readonly key: string,
  ) {}

  async gql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
    const res = await fetch(`${this.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${this.key}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors !== undefined) throw new Error(JSON.stringify(body.errors));
    return body.data;
  }

  /** `lazy: false` opens the socket at once and holds it (a subscriber waiting for work). */
  client(lazy = true): Client {
    return createClient({ url: `${this.url.replace("http", "ws")}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${this.key}` }, retryAttempts: 0, lazy });
  }
}
