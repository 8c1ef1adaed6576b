/**
 * The platform as a frontend developer meets it: Apollo Client over HTTP for queries and
 * mutations and GraphQLWsLink (graphql-ws) for the live turn, against a real server running the
 * real unipic-tiny graphs.
 */
import { ApolloClient, ApolloLink, CombinedGraphQLErrors, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isFinalTurnEvent, startJobsWhenWatched, startTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
let client: ApolloClient;
let ws: ReturnType<typeof createClient>;

beforeAll(async () => {
  t = await startTestApp({ ENGINE: "on", ENGINE_THREADS: "1" });
  startJobsWhenWatched(t); // the client subscribes after sending: let it see the turn from its start
  ws = createClient({ url: t.wsUrl, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${t.adminKey}` } });
  const http = new HttpLink({ uri: `${t.url}/graphql`, headers: { authorization: `Bearer ${t.adminKey}` } });
  const link = ApolloLink.split(
    ({ query }) => {
      const def = getMainDefinition(query);
      return def.kind === "OperationDefinition" && def.operation === "subscription";
    },
    new GraphQLWsLink(ws),
    http,
  );
  client = new ApolloClient({ link, cache: new InMemoryCache() });
});
afterAll(async () => {
  client?.stop();
  await ws?.dispose();
  await t?.close();
});

const CREATE = gql`mutation Create($title: String) { createConversation(input: { title: $title }) { id title } }`;
const SEND = gql`mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { userTurn { id text } assistantTurn { id status } } }`;
const FOLLOW = gql`subscription Follow($id: ID!) { turnUpdated(id: $id) { kind step totalSteps preview { step } turn { id status outputImages { id url } } } }`;
const HISTORY = gql`query History($id: ID!) { conversation(id: $id) { id title turns(last: 10) { nodes { id role kind status } pageInfo { hasPreviousPage } } } }`;

describe("Apollo Client + GraphQLWsLink", () => {
  it("creates a conversation, sends a message, follows the turn live, and reads the history", async () => {
    const created = await client.mutate({ mutation: CREATE, variables: { title: "apollo" } });
    const conversationId = (created.data as any).createConversation.id as string;
    const sent = await client.mutate({ mutation: SEND, variables: { input: { conversationId, text: "a red circle", params: { steps: 4, diffusionSteps: 5, seed: 3 } } } });
    const turnId = (sent.data as any).sendMessage.assistantTurn.id as string;

    const kinds: string[] = [];
    const steps: number[] = [];
    const final = await new Promise<any>((resolve, reject) => {
      const sub = client.subscribe({ query: FOLLOW, variables: { id: turnId } }).subscribe({
        next: ({ data, error }) => {
          if (error) return reject(error);
          const event = (data as any).turnUpdated;
          kinds.push(event.kind);
          if (event.kind === "STEP") steps.push(event.step);
          // (Were the turn finished before the subscription, its SNAPSHOT would be final.)
          if (isFinalTurnEvent(event)) {
            sub.unsubscribe();
            resolve(event);
          }
        },
        error: reject,
        complete: () => reject(new Error(`the subscription ended without a final event: ${kinds.join(", ")}`)),
      });
    });
    expect(kinds[0]).toBe("SNAPSHOT");
    expect(final.kind).toBe("COMPLETED");
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(final.turn.outputImages).toHaveLength(1);

    const history = await client.query({ query: HISTORY, variables: { id: conversationId }, fetchPolicy: "network-only" });
    const nodes = (history.data as any).conversation.turns.nodes;
    expect(nodes.map((n: any) => `${n.role}:${n.kind}:${n.status}`)).toEqual(["USER:GENERATE:COMPLETED", "ASSISTANT:GENERATE:COMPLETED"]);
    // The normalized cache holds the turn the subscription delivered, under its Node id.
    expect((client.cache.extract() as Record<string, unknown>)[`Turn:${turnId}`]).toMatchObject({ status: "COMPLETED" });
  });

  it("surfaces a server error with its code", async () => {
    const result = await client.query({ query: HISTORY, variables: { id: "not-an-id" }, errorPolicy: "all", fetchPolicy: "network-only" });
    expect(CombinedGraphQLErrors.is(result.error)).toBe(true);
    expect((result.error as CombinedGraphQLErrors).errors[0]?.extensions?.code).toBe("BAD_INPUT");
  });
});
