#!/usr/bin/env node
/**
 * `npm test`: every suite this machine can run, with one closing line `N passed, N failed`.
 * - vitest (unit, store, API e2e over real sockets, engine) — on PGlite, or on PostgreSQL when
 *   DATABASE_URL is set (then test/faults, which restarts that local cluster, runs alone last);
 * - the Python model toolkit's pytest suite, when /usr/bin/python3 has torch (skip with --no-python).
 * Extra arguments go to vitest (e.g. `npm test -- test/api`).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const args = process.argv.slice(2);
const noPython = args.includes("--no-python") || process.env.UNIPIC_TEST_PYTHON === "0";
const vitestArgs = args.filter((a) => a !== "--no-python");
mkdirSync(`${root}/test-results`, { recursive: true });

let passed = 0;
let failed = 0;
let skipped = 0;

/** Runs vitest with `extra` arguments and a JSON report next to the console output; adds its counts. */
function runVitest(extra, name) {
  const vitestJson = `${root}/test-results/${name}.json`;
  const before = failed;
  const vitest = spawnSync(
    process.execPath,
    [`${root}/node_modules/vitest/vitest.mjs`, "run", "--reporter=default", "--reporter=json", `--outputFile.json=${vitestJson}`, ...extra],
    { cwd: root, stdio: "inherit" },
  );
  if (existsSync(vitestJson)) {
    const report = JSON.parse(readFileSync(vitestJson, "utf8"));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    // A file that fails to load has no tests in the counts: count it as a failure.
    failed += report.testResults.filter((f) => f.status === "failed" && f.assertionResults.length === 0).length;
  } else {
    failed += 1;
  }
  if (vitest.status !== 0 && failed === before) failed += 1;
}

// 1. vitest. On PostgreSQL, test/faults (which stops and starts the cluster) runs alone after
// the rest, which would otherwise lose their connections mid-test.
const FAULTS = "test/faults";
if (process.env.DATABASE_URL && vitestArgs.length === 0) {
  runVitest(["--exclude", `${FAULTS}/**`], "vitest");
  runVitest([FAULTS], "vitest-faults");
} else {
  runVitest(vitestArgs, "vitest");
}

// 2. Python toolkit tests.
const python = "/usr/bin/python3";
const hasTorch = existsSync(python) && spawnSync(python, ["-c", "import torch, onnx, pytest"], { stdio: "ignore" }).status === 0;
if (!noPython && vitestArgs.length === 0 && existsSync(`${root}/models/toolkit/tests`)) {
  if (!hasTorch) {
    console.log("python toolkit tests: skipped (/usr/bin/python3 lacks torch, onnx or pytest; see README)");
  } else {
    const xml = `${root}/test-results/pytest.xml`;
    const py = spawnSync(python, ["-m", "pytest", "-q", "toolkit/tests", `--junitxml=${xml}`], {
      cwd: `${root}/models`,
      stdio: "inherit",
      env: { ...process.env, OPENBLAS_NUM_THREADS: "1" },
    });
    if (existsSync(xml)) {
      const suite = /<testsuite [^>]*>/.exec(readFileSync(xml, "utf8"))?.[0] ?? "";
      const num = (name) => Number(new RegExp(`${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
      const bad = num("failures") + num("errors");
      passed += num("tests") - bad - num("skipped");
      failed += bad;
      skipped += num("skipped");
    }
    if (py.status !== 0 && py.status !== 5 && !existsSync(xml)) failed += 1;
  }
}

console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
