/**
 * Configuration from the environment: defaults, and a bad value stops start-up naming the
 * variable, what was expected and what came (never a secret's value).
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_QUOTAS, loadConfig } from "../src/config.js";

function refusal(env: Record<string, string>): { field?: string; expected?: string; got?: string; message: string } {
  try {
    loadConfig(env);
  } catch (error) {
    return error as never;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe("loadConfig", () => {
  it("defaults: quotas generous or off, same-origin CORS, /metrics for admins", () => {
    const config = loadConfig({});
    expect(config.quotas).toEqual(DEFAULT_QUOTAS);
    expect(config.quotas).toEqual({ turnsPerMinute: 60, queuedTurns: 32, storedBytes: 0 });
    expect(config.cors).toEqual({ kind: "same-origin" });
    expect(config.metricsAccess).toBe("admin");
    expect(config.metricsToken).toBeNull();
  });

  it("reads the quotas, CORS origins and metrics access", () => {
    const config = loadConfig({
      USER_TURNS_PER_MINUTE: "0",
      USER_QUEUED_TURNS: "4",
      USER_STORED_BYTES: "1073741824",
      CORS_ORIGINS: " https://app.example.com , http://localhost:5173 ",
      METRICS_ACCESS: "open",
      METRICS_TOKEN: "0123456789abcdef",
    });
    expect(config.quotas).toEqual({ turnsPerMinute: 0, queuedTurns: 4, storedBytes: 1 << 30 });
    expect(config.cors).toEqual({ kind: "list", origins: ["https://app.example.com", "http://localhost:5173"] });
    expect(config.metricsAccess).toBe("open");
    expect(config.metricsToken).toBe("0123456789abcdef");
    expect(loadConfig({ CORS_ORIGINS: "*" }).cors).toEqual({ kind: "any" });
  });

  it("stops on a bad value, naming the variable, what was expected and what came", () => {
    expect(refusal({ USER_TURNS_PER_MINUTE: "-1" })).toMatchObject({ field: "USER_TURNS_PER_MINUTE", expected: "an integer in [0, 1000000]", got: '"-1"' });
    expect(refusal({ USER_QUEUED_TURNS: "many" })).toMatchObject({ field: "USER_QUEUED_TURNS", got: '"many"' });
    expect(refusal({ USER_STORED_BYTES: "1.5" })).toMatchObject({ field: "USER_STORED_BYTES" });
    expect(refusal({ CORS_ORIGINS: "https://app.example.com/path" })).toMatchObject({ field: "CORS_ORIGINS", got: '"https://app.example.com/path"' });
    expect(refusal({ CORS_ORIGINS: "app.example.com" })).toMatchObject({ field: "CORS_ORIGINS" });
    expect(refusal({ CORS_ORIGINS: "ftp://files.example.com" })).toMatchObject({ field: "CORS_ORIGINS" });
    expect(refusal({ METRICS_ACCESS: "public" })).toMatchObject({ field: "METRICS_ACCESS", expected: "one of admin, open" });
  });

  it("never echoes a bad METRICS_TOKEN, only what is wrong with it", () => {
    const short = refusal({ METRICS_TOKEN: "hunter2" });
    expect(short).toMatchObject({ field: "METRICS_TOKEN", expected: "at least 16 printable characters without spaces", got: '"7 characters"' });
    const spaced = refusal({ METRICS_TOKEN: "correct horse battery staple" });
    expect(spaced.got).toBe('"28 characters with spaces or non-ASCII"');
    expect(JSON.stringify([short, spaced, short.message, spaced.message])).not.toMatch(/hunter2|horse/);
  });

  it("REDIS_URL makes a scaled-out node and requires DATABASE_URL; unset, nothing changes", () => {
    expect(loadConfig({}, "/srv").redisUrl).toBeUndefined();
    const pg = "postgres://u@db:5432/unipic";
    expect(loadConfig({ REDIS_URL: "redis://cache:6379", DATABASE_URL: pg }, "/srv")).toMatchObject({ redisUrl: "redis://cache:6379", redisPrefix: "unipic" });
    expect(refusal({ REDIS_URL: "redis://cache:6379" })).toMatchObject({ field: "DATABASE_URL", got: '"unset"' });
    expect(refusal({ REDIS_URL: "cache:6379", DATABASE_URL: pg })).toMatchObject({ field: "REDIS_URL", expected: "a redis:// or rediss:// URL" });
    expect(refusal({ REDIS_URL: "redis://:secret@cache:6379", DATABASE_URL: pg, REDIS_PREFIX: "a b" })).toMatchObject({ field: "REDIS_PREFIX" });
    expect(JSON.stringify(refusal({ REDIS_URL: "http://:secret@cache:6379", DATABASE_URL: pg }))).not.toContain("secret");
  });
});
