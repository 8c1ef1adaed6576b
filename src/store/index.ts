/** The persistence layer: drizzle-orm over PGlite (default) or node-postgres (DATABASE_URL). */
export { openDatabase, MIGRATIONS_DIR, type Database, type OpenDatabaseOptions, type Orm } from "./db.js";
export { createStore } from "./store.js";
export { patientStore, type PatienceOptions } from "./patient.js";
export { generateApiKey, hashApiKey, API_KEY_PREFIX } from "./users.js";
export { sha256Hex } from "./images.js";
export { ALLOWED_FROM } from "./turns.js";
export { isUuid, isSha256Hex } from "./util.js";
export * from "./types.js";
