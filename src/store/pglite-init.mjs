// Runs PGlite's initdb on an empty data directory, in its own process: `node pglite-init.mjs DIR`.
// Creating a database makes PGlite hold a second WebAssembly instance, the file-system bundle and
// their scratch memory, about 400 MB that stays resident in the process that did it even after
// close (the allocator keeps what was freed). Done here, it goes back to the OS on exit, and the
// server opens the initialised directory with only what it needs (store/db.ts).
import { PGlite } from "@electric-sql/pglite";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node pglite-init.mjs DATA_DIR");
  process.exit(2);
}
const db = await PGlite.create({ dataDir: dir });
await db.close();
