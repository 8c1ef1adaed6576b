/** Writes schema/schema.graphql from the type-graphql classes (`npm run schema:emit`). A test fails when it drifts. */
import { writeFile } from "node:fs/promises";
import { printSdl } from "../src/api/schema.js";

const target = new URL("../schema/schema.graphql", import.meta.url);
await writeFile(target, await printSdl());
console.log(`wrote ${target.pathname}`);
