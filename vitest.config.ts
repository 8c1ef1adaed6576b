import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";
import { WAIT_MS } from "./test/helpers/wait.js";

const require = createRequire(import.meta.url);

export default defineConfig({
  // graphql 16 ships CJS and ESM builds; Vite would load the ESM one for test files while
  // type-graphql and Apollo load the CJS one ("another module or realm"). One copy only.
  resolve: { alias: { graphql: require.resolve("graphql") } },
  test: {
    include: ["test/**/*.test.ts"],
    // The suite must hold on a busy machine (beside another `npm test`, or a training run): every
    // limit follows from what it waits for (test/helpers/wait.ts; UNIPIC_TEST_SLOWDOWN scales
    // them all). A wait for one piece of server work (a request, a page update, a short job) may
    // take WAIT_MS; a test or hook is a few such waits. Passing runs never wait these out.
    testTimeout: 3 * WAIT_MS,
    hookTimeout: 3 * WAIT_MS,
    // expect.poll waits for the server or the page like any other wait (vitest's default is 1 s).
    expect: { poll: { timeout: WAIT_MS, interval: 50 } },
    // Two cores: PGlite boots and ONNX sessions are CPU heavy; more workers only thrash.
    maxWorkers: 2,
  },
});
