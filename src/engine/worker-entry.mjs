// Entry of the engine's worker thread: registers tsx's loader (a worker does not inherit the
// parent's module hooks), then runs worker.ts.
import { register } from "tsx/esm/api";

register();
await import("./worker.ts");
