import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { App } from "./support.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const app = new App();
before(() => app.start());
after(() => app.dispose());

test("the committed OpenAPI document and the generated types match what the app serves (npm run generate -- <url> to refresh)", async () => {
  // @ts-expect-error: a plain .mjs script without types
  const { generate, normalize } = (await import("../../scripts/generate-api-types.mjs")) as {
    generate(d: unknown): Promise<string>; normalize(d: unknown): Promise<string> };
  const served = (await (await fetch(`${app.url}/openapi/v1.json`)).json()) as unknown;
  const committed = await readFile(`${root}openapi/v1.json`, "utf8");
  assert.equal(committed, await normalize(served), "openapi/v1.json differs from /openapi/v1.json: run `npm run generate -- http://localhost:5080`");
  assert.equal(await readFile(`${root}src/generated/api.ts`, "utf8"), await generate(served),
    "src/generated/api.ts is stale: run `npm run generate`");
});
