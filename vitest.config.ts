import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  // graphql 16 ships CJS and ESM builds; Vite would load the ESM one for test files while
  // type-graphql and Apollo load the CJS one ("another module or realm"). One copy only.
  resolve: { alias: { graphql: require.resolve("graphql") } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: PGlite boots and ONNX sessions are CPU heavy; more workers only thrash.
    maxWorkers: 2,
  },
});
