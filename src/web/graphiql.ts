/// <reference lib="dom" />
/**
 * GraphiQL, bundled from npm (nothing from a CDN), against this server: the API key comes from
 * the web client's storage and goes out as the Authorization header, and subscriptions run over
 * graphql-ws with the same key.
 */
import "graphiql/style.css";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { GraphiQL } from "graphiql";
import { createClient } from "graphql-ws";
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { KEY_STORAGE } from "./api.js";

const DEFAULT_QUERY = `# The API key from the web client's sign-in is sent with every request.
# Subscriptions (turnUpdated, conversationUpdated) run over graphql-ws.
query Me {
  viewer { name isAdmin }
  conversations(first: 10) { nodes { id title updatedAt } }
}
`;

const el = document.getElementById("graphiql")!;
const key = localStorage.getItem(KEY_STORAGE);
if (key === null) {
  el.innerHTML = '<main style="font: 16px/1.5 system-ui, sans-serif; padding: 2rem"><h1>GraphiQL</h1><p>Sign in first: <a href="/">open the web client</a> and enter your API key; this page uses the same key.</p></main>';
} else {
  const authorization = `Bearer ${key}`;
  const fetcher = createGraphiQLFetcher({
    url: `${location.origin}/graphql`,
    headers: { authorization },
    wsClient: createClient({ url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`, connectionParams: { authorization }, lazy: true }),
  });
  createRoot(el).render(createElement(GraphiQL, { fetcher, defaultQuery: DEFAULT_QUERY }));
}
