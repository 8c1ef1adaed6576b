/** The GraphQL documents the client sends; all of them are in schema/schema.graphql. */

const IMAGE = "id url width height";
export const TURN_FIELDS = `id role kind task status text position queuePosition seed params createdAt
  error { code message }
  inputImages { ${IMAGE} }
  outputImages { ${IMAGE} }`;

export const VIEWER = `query Viewer { viewer { id name isAdmin } }`;

export const CONVERSATIONS = `query Conversations($first: Int, $after: String) {
  conversations(first: $first, after: $after) {
    nodes { id title updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const CONVERSATION = `query Conversation($id: ID!, $last: Int, $before: String) {
  conversation(id: $id) {
    id title updatedAt
    turns(last: $last, before: $before) {
      totalCount
      nodes { ${TURN_FIELDS} }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}`;

export const CREATE_CONVERSATION = `mutation CreateConversation($title: String) {
  createConversation(input: { title: $title }) { id title updatedAt }
}`;

export const RENAME_CONVERSATION = `mutation RenameConversation($id: ID!, $title: String!) {
  renameConversation(id: $id, title: $title) { id title updatedAt }
}`;

export const DELETE_CONVERSATION = `mutation DeleteConversation($id: ID!) { deleteConversation(id: $id) }`;

export const SEND_MESSAGE = `mutation SendMessage($input: SendMessageInput!) {
  sendMessage(input: $input) {
    userTurn { ${TURN_FIELDS} }
    assistantTurn { ${TURN_FIELDS} }
  }
}`;

export const CANCEL_TURN = `mutation CancelTurn($id: ID!) { cancelTurn(id: $id) { ${TURN_FIELDS} } }`;

export const TURN_UPDATED = `subscription TurnUpdated($id: ID!) {
  turnUpdated(id: $id) {
    kind queuePosition etaMs step totalSteps delta
    preview { dataUrl url width height step }
    turn { ${TURN_FIELDS} }
  }
}`;

export const CONVERSATION_UPDATED = `subscription ConversationUpdated($id: ID!) {
  conversationUpdated(id: $id) {
    kind
    conversation { id title updatedAt }
    turn { ${TURN_FIELDS} }
  }
}`;

export interface ImageRef {
  id: string;
  url: string;
  width: number;
  height: number;
}

export type TurnStatus = "QUEUED" | "RUNNING" | "COMPLETED" | "FAILED" | "CANCELLED";
export type Task = "AUTO" | "GENERATE" | "EDIT" | "UNDERSTAND";

export interface Turn {
  id: string;
  role: "USER" | "ASSISTANT";
  kind: "GENERATE" | "EDIT" | "UNDERSTAND" | null;
  task: Task;
  status: TurnStatus;
  text: string;
  position: number;
  queuePosition: number | null;
  seed: number | null;
  params: Record<string, unknown>;
  createdAt: string;
  error: { code: string; message: string } | null;
  inputImages: ImageRef[];
  outputImages: ImageRef[];
}

export interface ConversationSummary {
  id: string;
  title: string;
  updatedAt: string;
}

export interface TurnEvent {
  kind: "SNAPSHOT" | "QUEUED" | "RUNNING" | "STEP" | "TOKEN" | "COMPLETED" | "FAILED" | "CANCELLED";
  queuePosition: number | null;
  etaMs: number | null;
  step: number | null;
  totalSteps: number | null;
  delta: string | null;
  preview: { dataUrl: string | null; url: string | null; width: number; height: number; step: number } | null;
  turn: Turn;
}

export const FINAL: ReadonlySet<TurnStatus> = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
