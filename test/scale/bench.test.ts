/** `unipic bench --scale` runs a deployment on REDIS_URL and DATABASE_URL: without them it says so. */
import { describe, expect, it } from "vitest";
import { runScaleBench } from "../../src/cli/bench-scale.js";
import { loadConfig } from "../../src/config.js";

describe("bench --scale", () => {
  it("refuses to start without REDIS_URL and DATABASE_URL, naming them, and emits nothing", async () => {
    const lines: unknown[] = [];
    await expect(runScaleBench(loadConfig({}), true, (m) => lines.push(m))).rejects.toMatchObject({ code: "BAD_INPUT", field: "REDIS_URL" });
    expect(lines).toEqual([]);
  });
});
