import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { App } from "./support.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const app = new App();
before(() => app.start());
after(() => app.dispose());

test("the served OpenAPI document passes spectral's spectral:oas rules with no error and no warning", async () => {
  const file = join(app.data, "openapi.json");
  await writeFile(file, await (await fetch(`${app.url}/openapi/v1.json`)).text());
  let output: string;
  try {
    ({ stdout: output } = await promisify(execFile)(join(root, "node_modules/.bin/spectral"),
      ["lint", file, "--ruleset", join(root, ".spectral.yaml"), "--format", "json", "--quiet"], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    output = (error as { stdout?: string }).stdout ?? ""; // spectral exits 1 when it finds errors
  }
  const results = JSON.parse(output || "[]") as { code: string; severity: number; message: string; path: string[] }[];
  const problems = results.filter((r) => r.severity <= 1).map((r) => `${r.code} at ${r.path.join(".")}: ${r.message}`);
  assert.deepEqual(problems, []);
});
