/** createStore: the repositories over one open Database. */
import { conversationsRepo } from "./conversations.js";
import type { Database } from "./db.js";
import { imagesRepo } from "./images.js";
import type { Store } from "./types.js";
import { turnsRepo } from "./turns.js";
import { usersRepo } from "./users.js";

export function createStore(db: Database): Store {
  return {
    users: usersRepo(db.orm),
    conversations: conversationsRepo(db.orm),
    turns: turnsRepo(db.orm),
    images: imagesRepo(db.orm),
  };
}
