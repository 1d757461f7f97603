/** Test support: the real app (built ReviewerPortal.dll, embedded Garnet, SQLite in a temp folder, demo data). */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { MemorySaver } from "@langchain/langgraph";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export function findDll(): string {
  if (process.env.REVIEWERPORTAL_DLL) return process.env.REVIEWERPORTAL_DLL;
  const bin = join(repo, "src/ReviewerPortal/bin");
  const found = existsSync(bin)
    ? readdirSync(bin).map((c) => join(bin, c, "net10.0/ReviewerPortal.dll")).filter((p) => existsSync(p))
    : [];
  if (found.length === 0) throw new Error("ReviewerPortal.dll not found: run 'dotnet build src/ReviewerPortal' or set REVIEWERPORTAL_DLL");
  return found.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => ok(port));
    });
  });
}

export class App {
  readonly data = mkdtempSync(join(tmpdir(), "rp-typescript-"));
  url = "";
  #process: ChildProcess | undefined;
  #port = 0;

  async start(): Promise<void> {
    this.#port ||= await freePort();
    this.url = `http://127.0.0.1:${this.#port}`;
    const log = openSync(join(this.data, "app.log"), "a");
    const dll = findDll();
    const env: NodeJS.ProcessEnv = { ...process.env, ASPNETCORE_ENVIRONMENT: "Development", Urls: this.url,
      Storage__DataPath: join(this.data, "store"), DOTNET_NOLOGO: "1", Logging__LogLevel__Default: "Warning" };
    delete env.ASPNETCORE_URLS;
    this.#process = spawn("dotnet", [dll], { cwd: dirname(dll), env, stdio: ["ignore", log, log], detached: true });
    closeSync(log);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (this.#process.exitCode !== null) throw new Error(`the app exited with ${this.#process.exitCode}; see ${this.data}/app.log`);
      try {
        if ((await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) })).status === 200) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`the app did not answer /healthz within 120 s; see ${this.data}/app.log`);
  }

  /** Stops the app and its embedded Garnet (the process group this support started); `crash` kills them. */
  async stop(options: { crash?: boolean } = {}): Promise<void> {
    const child = this.#process;
    if (!child?.pid) return;
    const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r())));
    try { process.kill(-child.pid, options.crash ? "SIGKILL" : "SIGTERM"); } catch { /* gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid!, "SIGKILL"); } catch { /* gone */ } }, 30_000);
    await exited;
    clearTimeout(timer);
    try { process.kill(-child.pid, "SIGKILL"); } catch { /* none left */ }
    this.#process = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    if (!process.env.RP_KEEP_DATA) rmSync(this.data, { recursive: true, force: true });
  }
}

/** The id of acme's pending approval submitted with `key` (as a reviewer finds it in the queue). */
export async function pendingWithKey(app: App, key: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const page = (await (await fetch(`${app.url}/api/v1/approvals?tenant=acme&state=pending&limit=200`,
      { headers: { authorization: "Bearer demo-alice-token" } })).json()) as { items: { id: string; idempotencyKey?: string }[] };
    const hit = page.items.find((i) => i.idempotencyKey === key);
    if (hit) return hit.id;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no pending approval with key ${key}`);
}

export const unique = (prefix: string) => `${prefix}-${process.hrtime.bigint()}`;

/**
 * A checkpointer kept in a JSON file, so a graph interrupted in one process is resumed by another
 * (MemorySaver's storage, Uint8Arrays as base64).
 */
export class FileSaver extends MemorySaver {
  constructor(readonly path: string) {
    super();
    if (existsSync(path)) {
      const saved = JSON.parse(readFileSync(path, "utf8"), (_k, v) =>
        v && typeof v === "object" && "$b64" in v ? Uint8Array.from(Buffer.from(v.$b64 as string, "base64")) : v) as
        { storage: MemorySaver["storage"]; writes: MemorySaver["writes"] };
      this.storage = saved.storage;
      this.writes = saved.writes;
    }
  }

  #save(): void {
    writeFileSync(this.path, JSON.stringify({ storage: this.storage, writes: this.writes }, (_k, v) =>
      v instanceof Uint8Array ? { $b64: Buffer.from(v).toString("base64") } : v));
  }

  override async put(...args: Parameters<MemorySaver["put"]>) {
    const result = await super.put(...args);
    this.#save();
    return result;
  }

  override async putWrites(...args: Parameters<MemorySaver["putWrites"]>) {
    await super.putWrites(...args);
    this.#save();
  }
}
