/**
 * Waiting in tests without assuming a quiet machine: poll a condition quickly at first, then less
 * often, until it holds or a generous deadline passes, and then fail naming what was awaited and
 * what was last seen. A passing wait returns as soon as the condition holds, so a generous limit
 * costs nothing; only a failing one waits it out. The limits scale with UNIPIC_TEST_SLOWDOWN
 * (default 1) for machines slower still.
 */

/** Multiplies every generous limit below: UNIPIC_TEST_SLOWDOWN=3 on a machine three times busier. */
export const SLOWDOWN = Math.max(1, Number(process.env.UNIPIC_TEST_SLOWDOWN ?? 1) || 1);

/** How long a wait for server-side work (a request, a page update, a short job) may take before it is a failure. */
export const WAIT_MS = 120_000 * SLOWDOWN;

export interface WaitOptions {
  /** The overall limit (default WAIT_MS). */
  timeoutMs?: number;
  /** The first poll interval; it doubles up to `maxIntervalMs`. */
  intervalMs?: number;
  /** Default 500 ms. */
  maxIntervalMs?: number;
}

/** Polls `probe` until `done(value)`; returns that value. Rejects naming `what` and the last value seen. */
export async function waitFor<T>(what: string, probe: () => Promise<T> | T, done: (value: T) => boolean = Boolean, options: WaitOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? WAIT_MS;
  const deadline = Date.now() + timeoutMs;
  let interval = Math.min(options.intervalMs ?? 20, options.maxIntervalMs ?? 500);
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (done(last)) return last;
    } catch (error) {
      lastError = error; // e.g. an element not there yet: keep polling
    }
    if (Date.now() >= deadline) {
      const seen = lastError !== undefined ? `the last probe failed: ${(lastError as Error)?.message ?? String(lastError)}` : `last seen: ${JSON.stringify(last)?.slice(0, 500)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, Math.max(0, deadline - Date.now()))));
    interval = Math.min(options.maxIntervalMs ?? 500, interval * 2);
  }
}
