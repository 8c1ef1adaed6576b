/**
 * GraphQL enums. The vocabularies are defined once, in store/types.ts, engine/types.ts and
 * turns/events.ts, and registered here under their GraphQL names; on the wire a value is its
 * name (QUEUED, GENERATE, LINEAR), in the store and the engine its value ("generate", "linear").
 */
import { registerEnumType } from "type-graphql";
import { CfgSchedule, PreviewKind as PreviewMethod } from "../../engine/types.js";
import { Task, TurnKind, TurnRole, TurnStatus } from "../../store/types.js";
import { ConversationEventKind, TurnEventKind } from "../../turns/events.js";

export { CfgSchedule, ConversationEventKind, PreviewMethod, Task, TurnEventKind, TurnKind, TurnRole, TurnStatus };

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
