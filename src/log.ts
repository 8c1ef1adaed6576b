/**
 * The server log's last line of defence: every line passes through `redactSecrets` on its way
 * out (startApp wraps the sink). Call sites already log no API key, image bytes or prompt text
 * (errors are logged by their own message and stack, never their driver cause, which may quote a
 * query's parameters); this catches what slips through by shape: API keys, bearer credentials,
 * data URLs and long base64 or hex runs. Prompt text has no shape: keeping it out is the call
 * sites' rule (test/api/logs.test.ts checks it).
 */

const API_KEY = /upk_[0-9A-Za-z]{4,}/g;
const BEARER = /\b(bearer\s+)[^\s"',;]+/gi;
const DATA_URL = /data:[\w/+.-]+;base64,[A-Za-z0-9+/=]*/g;
/** Image bytes as base64 or hex: far longer than any id (a sha256 is 64 hex characters). */
const LONG_RUN = /[A-Za-z0-9+/=]{160,}/g;

export function redactSecrets(line: string): string {
  return line
    .replace(API_KEY, "upk_[redacted]")
    .replace(BEARER, "$1[redacted]")
    .replace(DATA_URL, (m) => `${m.slice(0, m.indexOf(",") + 1)}[${m.length} chars redacted]`)
    .replace(LONG_RUN, (m) => `[${m.length} chars redacted]`);
}

/** A log sink that redacts every line before `sink` sees it. */
export function redactingLog(sink: (line: string) => void): (line: string) => void {
  return (line) => sink(redactSecrets(line));
}
