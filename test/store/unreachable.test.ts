/**
 * A database that cannot be reached is UNAVAILABLE (retry), not INTERNAL; the runner's patient
 * store waits such failures out and lets every other error through at once.
 */
import { describe, expect, it } from "vitest";
import { AppError, ErrorCode } from "../../src/errors.js";
import { patientStore, type Store } from "../../src/store/index.js";
import { isUnreachable, wrapError } from "../../src/store/util.js";

const pgError = (code: string, message = "server error") => Object.assign(new Error(message), { code });

describe("wrapError: an unreachable database", () => {
  it.each([
    ["admin shutdown (a restart)", pgError("57P01", "terminating connection due to administrator command")],
    ["starting up", pgError("57P03", "the database system is starting up")],
    ["a connection exception", pgError("08006")],
    ["refused, under drizzle's wrapper", new Error("Failed query: select 1", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED", errno: -111 }) })],
    ["a connection node-postgres lost", new Error("Connection terminated unexpectedly")],
    ["a connect that timed out", new Error("timeout exceeded when trying to connect")],
  ])("%s is UNAVAILABLE with retryAfterMs", (_what, raw) => {
    expect(isUnreachable(raw)).toBe(true);
    const error = wrapError(raw, "store.turns.get");
    expect(error.code).toBe(ErrorCode.UNAVAILABLE);
    expect(error.retryAfterMs).toBe(1000);
    expect(error.message).toBe("store.turns.get: the database is unreachable; retry shortly");
    expect(error.cause).toBe(raw);
  });

  it("a query the server refused is not", () => {
    expect(isUnreachable(pgError("23505"))).toBe(false);
    expect(wrapError(pgError("23505"), "x").code).toBe(ErrorCode.CONFLICT);
    expect(wrapError(pgError("42P01", 'relation "turns" does not exist'), "x").code).toBe(ErrorCode.INTERNAL);
    expect(wrapError(new TypeError("undefined is not a function"), "x").code).toBe(ErrorCode.INTERNAL);
  });
});

/** A store whose turns.setStatus fails `failures` times with `error`, then answers "ok". */
function flakyStore(failures: number, error: AppError): { store: Store; calls: () => number } {
  let calls = 0;
  const setStatus = async () => {
    calls++;
    if (calls <= failures) throw error;
    return "ok";
  };
  const store = { users: {}, conversations: {}, images: {}, turns: { setStatus } } as unknown as Store;
  return { store, calls: () => calls };
}

const down = new AppError(ErrorCode.UNAVAILABLE, "store.turns.setStatus: the database is unreachable; retry shortly");

describe("patientStore", () => {
  it("tries a call again, with growing waits, until the database answers", async () => {
    const waits: number[] = [];
    const lines: string[] = [];
    const { store, calls } = flakyStore(4, down);
    const patient = patientStore(store, { sleep: async (ms) => void waits.push(ms), log: (l) => lines.push(l) });
    await expect(patient.turns.setStatus("id", "RUNNING")).resolves.toBe("ok");
    expect(calls()).toBe(5);
    expect(waits).toEqual([50, 100, 200, 400]);
    expect(lines).toEqual([
      "store: turns.setStatus: the database is unreachable; trying again for up to 600 s",
      "store: turns.setStatus got through once the database was back",
    ]);
  });

  it("lets any other error through at once", async () => {
    const { store, calls } = flakyStore(1, AppError.badInput("status", "a status", "x"));
    await expect(patientStore(store, { sleep: async () => undefined }).turns.setStatus("id", "RUNNING")).rejects.toMatchObject({ code: ErrorCode.BAD_INPUT });
    expect(calls()).toBe(1);
  });

  it("gives up with UNAVAILABLE once its patience is spent", async () => {
    const { store, calls } = flakyStore(Number.MAX_SAFE_INTEGER, down);
    const patient = patientStore(store, { patienceMs: 120, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
    await expect(patient.turns.setStatus("id", "RUNNING")).rejects.toBe(down);
    expect(calls()).toBeGreaterThanOrEqual(2);
    expect(calls()).toBeLessThan(5); // 50 + 100 ms of waits fit in 120 ms at most once each
  });
});
