// Runs the compiled tests (build/test/*.test.js) with Node's test runner, one file at a time (each starts the app).
// RP_JUNIT_FILE=path also writes a JUnit report there (CI sums it into its closing line).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL("../build/test/", import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort().map((f) => dir + f);
const args = ["--test", "--test-concurrency=1", "--test-reporter=spec", "--test-reporter-destination=stdout"];
if (process.env.RP_JUNIT_FILE) args.push("--test-reporter=junit", `--test-reporter-destination=${process.env.RP_JUNIT_FILE}`);
const run = spawnSync(process.execPath, [...args, ...files], { stdio: "inherit" });
process.exit(run.status ?? 1);
