import { defineConfig } from "drizzle-kit";

// Only drizzle-kit writes migrations/: `npm run db:generate` after changing src/store/schema.ts.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./migrations",
});
