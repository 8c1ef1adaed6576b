/** Per-operation context: the authenticated user and the shared services. */
import type { UserRow } from "../store/index.js";
import type { Services } from "../turns/service.js";

export interface Context {
  user: UserRow;
  services: Services;
}
