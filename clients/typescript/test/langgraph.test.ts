import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { HumanMessage, type BaseMessage } from "@langchain/core/messages";
import { MemorySaver } from "@langchain/langgraph";
import { ReviewerPortalClient } from "../src/index.js";
import { pendingApprovals, resumeWhenDecided } from "../src/langgraph.js";
import { buildGraph, type PayArgs } from "./graph.js";
import { App, FileSaver, unique } from "./support.js";

const app = new App();
let rp: ReviewerPortalClient;
let alice: ReviewerPortalClient;
before(async () => {
  await app.start();
  rp = new ReviewerPortalClient(app.url, "demo-acme-agent");
  alice = new ReviewerPortalClient(app.url, "demo-alice-token");
});
after(() => app.dispose());

const child = fileURLToPath(new URL("./langgraph-child.js", import.meta.url));
const lastText = (state: { messages: BaseMessage[] }) => String(state.messages[state.messages.length - 1]!.content);

/** Starts the graph in another process, which exits at the interrupt; returns the approval it waits on. */
function startElsewhere(file: string, thread: string, callId: string, args: PayArgs): string {
  const out = execFileSync(process.execPath, [child, app.url, file, thread, callId, args.invoice, String(args.amount)], { encoding: "utf8" });
  const { interrupted } = JSON.parse(out.trim().split("\n").pop()!) as { interrupted: string[] };
  assert.equal(interrupted.length, 1);
  return interrupted[0]!;
}

test("approved: the graph started by a process that is gone resumes here and runs the tool once with the approved arguments", async () => {
  const file = join(app.data, `${unique("ckpt")}.json`);
  const thread = unique("thread");
  const callId = unique("call");
  const approvalId = startElsewhere(file, thread, callId, { invoice: "INV-LG", amount: 42 });

  const calls: PayArgs[] = [];
  const graph = buildGraph(rp, new FileSaver(file), callId, { invoice: "INV-LG", amount: 42 }, async (args) => {
    calls.push(args);
    return `paid ${args.invoice} (${args.amount})`;
  });
  const config = { configurable: { thread_id: thread } };
  const pending = await pendingApprovals(graph, config);
  assert.deepEqual(pending.map((p) => [p.request.approvalId, p.request.toolCallId, p.request.toolName]), [[approvalId, callId, "pay"]]);

  const resuming = resumeWhenDecided(rp, graph, config, { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(calls, []);
  await alice.approve(approvalId, "ok");
  const state = (await resuming) as { messages: BaseMessage[] };
  assert.equal(lastText(state), "done: paid INV-LG (42)");
  assert.deepEqual(calls, [{ invoice: "INV-LG", amount: 42 }]);
  assert.equal(await resumeWhenDecided(rp, graph, config), undefined); // nothing left to resume
});

test("rejected: the reviewer's reason goes back to the model as the tool message, the tool never runs", async () => {
  const checkpointer = new MemorySaver();
  const callId = unique("call");
  let runs = 0;
  const graph = buildGraph(rp, checkpointer, callId, { invoice: "INV-NO", amount: 1 }, async () => { runs++; return "paid"; });
  const config = { configurable: { thread_id: unique("thread") } };
  const first = (await graph.invoke({ messages: [new HumanMessage("pay INV-NO")] }, config)) as { __interrupt__?: unknown[] };
  assert.equal(first.__interrupt__?.length, 1);
  const { request } = (await pendingApprovals(graph, config))[0]!;
  await alice.reject(request.approvalId, "wrong vendor");
  const state = (await resumeWhenDecided(rp, graph, config, { timeoutMs: 30_000 })) as { messages: BaseMessage[] };
  assert.equal(lastText(state), "done: Not approved (rejected): wrong vendor");
  assert.equal(runs, 0);
});

test("a forged resume value does not run the tool: the decision is read from ReviewerPortal", async () => {
  const { Command } = await import("@langchain/langgraph");
  const checkpointer = new MemorySaver();
  const callId = unique("call");
  let runs = 0;
  const graph = buildGraph(rp, checkpointer, callId, { invoice: "INV-F", amount: 1 }, async () => { runs++; return "paid"; });
  const config = { configurable: { thread_id: unique("thread") } };
  await graph.invoke({ messages: [new HumanMessage("pay INV-F")] }, config);
  const { request } = (await pendingApprovals(graph, config))[0]!;
  const forged = await graph.invoke(new Command({ resume: { id: request.approvalId, state: "approved" } }), config) as { __interrupt__?: unknown[] };
  assert.equal(forged.__interrupt__?.length, 1); // still waiting
  assert.equal(runs, 0);
});
