/**
 * Builds the web client (src/web) into dist/web, which src/api/web.ts serves at / and
 * /graphiql. Two pages: the client and GraphiQL, so the client's bundle carries no React.
 * (vitest reads vitest.config.ts, not this file.)
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const web = (file: string): string => fileURLToPath(new URL(`./src/web/${file}`, import.meta.url));

export default defineConfig({
  root: web(""),
  base: "/",
  publicDir: false,
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("./dist/web", import.meta.url)),
    emptyOutDir: true,
    target: "es2022",
    // GraphiQL's editor is large by nature; it loads only on /graphiql.
    chunkSizeWarningLimit: 2500,
    rollupOptions: {
      input: { main: web("index.html"), graphiql: web("graphiql.html") },
      // GraphiQL's dependencies mark React server components with "use client"; meaningless here.
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
});
