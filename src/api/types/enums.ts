/**
 * GraphQL enums. The turn and engine vocabularies are defined once, in store/types.ts and
 * engine/types.ts, and registered here under their GraphQL names; on the wire a value is its
 * name (QUEUED, GENERATE, LINEAR), in the store and the engine its value ("generate", "linear").
 */
import { registerEnumType } from "type-graphql";
import { CfgSchedule, PreviewKind as PreviewMethod } from "../../engine/types.js";
import { Task, TurnKind, TurnRole, TurnStatus } from "../../store/types.js";

export { CfgSchedule, PreviewMethod, Task, TurnKind, TurnRole, TurnStatus };

export enum TurnEventKind {
  /** The turn as it is now; always the first event of a subscription. */
  SNAPSHOT = "SNAPSHOT",
  QUEUED = "QUEUED",
  RUNNING = "RUNNING",
  /** One MAR iteration finished (step, totalSteps, maybe a preview). */
  STEP = "STEP",
  /** Understanding produced text (delta and the text so far). */
  TOKEN = "TOKEN",
  COMPLETED = "COMPLETED",
  FAILED = "FAILED",
  CANCELLED = "CANCELLED",
}

export enum ConversationEventKind {
  SNAPSHOT = "SNAPSHOT",
  TURN_ADDED = "TURN_ADDED",
  TURN_UPDATED = "TURN_UPDATED",
  RENAMED = "RENAMED",
  DELETED = "DELETED",
}

registerEnumType(TurnStatus, { name: "TurnStatus", description: "Lifecycle of a turn: QUEUED -> RUNNING -> COMPLETED | FAILED | CANCELLED." });
registerEnumType(TurnRole, {
  name: "TurnRole",
  valuesConfig: { USER: { description: "Sent by a person." }, ASSISTANT: { description: "Produced by the model." } },
});
registerEnumType(TurnKind, { name: "TurnKind", description: "What the model does for a turn." });
registerEnumType(Task, { name: "Task", description: "What the sender asks for; AUTO lets the server choose from the text and images." });
registerEnumType(CfgSchedule, { name: "CfgSchedule" });
registerEnumType(PreviewMethod, { name: "PreviewMethod", description: "How decoding previews are made: LINEAR is near free, VAE decodes the partial latent." });
registerEnumType(TurnEventKind, { name: "TurnEventKind" });
registerEnumType(ConversationEventKind, { name: "ConversationEventKind" });
