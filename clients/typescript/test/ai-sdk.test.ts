import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { generateText, jsonSchema, stepCountIs, tool, type ModelMessage } from "ai";
import { MockLanguageModelV3 } from "ai/test";
import { ReviewerPortalClient } from "../src/index.js";
import { answerToolApprovals, needsApprovalFrom, withApproval } from "../src/ai-sdk.js";
import { App, pendingWithKey, unique } from "./support.js";

const app = new App();
let rp: ReviewerPortalClient;
let alice: ReviewerPortalClient;
before(async () => {
  await app.start();
  rp = new ReviewerPortalClient(app.url, "demo-acme-agent");
  alice = new ReviewerPortalClient(app.url, "demo-alice-token");
});
after(() => app.dispose());

type PayArgs = { invoice: string; amount: number };
const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };

/** The SDK's mock model: first a `pay` tool call with id `callId`, then text naming what the tool answered. */
function scriptedModel(callId: string, args: PayArgs) {
  return new MockLanguageModelV3({
    doGenerate: async (options) => {
      const toolResult = options.prompt.flatMap((m) => (m.role === "tool" ? m.content : []))
        .find((p) => p.type === "tool-result");
      if (toolResult && toolResult.type === "tool-result") {
        return { content: [{ type: "text", text: `done: ${JSON.stringify(toolResult.output)}` }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
      }
      return { content: [{ type: "tool-call", toolCallId: callId, toolName: "pay", input: JSON.stringify(args) }],
        finishReason: { unified: "tool-calls", raw: "tool_calls" }, usage, warnings: [] };
    },
  });
}

const payInput = jsonSchema<PayArgs>({ type: "object", properties: { invoice: { type: "string" }, amount: { type: "number" } }, required: ["invoice", "amount"] });

test("withApproval: the tool runs only when approved, once; a rejection's reason is the tool's output", async () => {
  const calls: PayArgs[] = [];
  const pay = withApproval(rp, tool({ description: "Pays an invoice", inputSchema: payInput,
    execute: async (args: PayArgs) => { calls.push(args); return `paid ${args.invoice}`; } }), { topic: "finance.payment.execute", timeoutMs: 60_000 });

  const callId = unique("call");
  const running = generateText({ model: scriptedModel(callId, { invoice: "INV-AI", amount: 5 }), tools: { pay }, prompt: "pay INV-AI", stopWhen: stepCountIs(3) });
  const approvalId = await pendingWithKey(app, callId);
  assert.deepEqual(calls, []);
  await alice.approve(approvalId, "ok");
  const result = await running;
  assert.equal(result.text, 'done: {"type":"text","value":"paid INV-AI"}');
  assert.deepEqual(calls, [{ invoice: "INV-AI", amount: 5 }]);

  // The same tool call again (a retry after a crash) attaches to the same approval and does not pay twice.
  const again = await generateText({ model: scriptedModel(callId, { invoice: "INV-AI", amount: 5 }), tools: { pay }, prompt: "pay INV-AI", stopWhen: stepCountIs(3) });
  assert.equal(again.text, result.text);
  assert.equal(calls.length, 1);

  const rejectedId = unique("call");
  const refusing = generateText({ model: scriptedModel(rejectedId, { invoice: "INV-NO", amount: 5 }), tools: { pay }, prompt: "pay INV-NO", stopWhen: stepCountIs(3) });
  await alice.reject(await pendingWithKey(app, rejectedId), "wrong vendor");
  assert.equal((await refusing).text, 'done: {"type":"text","value":"Not approved (rejected): wrong vendor"}');
  assert.equal(calls.length, 1);
});

test("the SDK's tool-approval step is answered from ReviewerPortal's decision", async () => {
  const calls: PayArgs[] = [];
  const gate = { topic: "finance.payment.execute", timeoutMs: 60_000 };
  const pay = tool({ description: "Pays an invoice", inputSchema: payInput, needsApproval: needsApprovalFrom(rp, gate),
    execute: async (args: PayArgs) => { calls.push(args); return `paid ${args.invoice}`; } });

  for (const [decision, invoice] of [["approve", "INV-SDK"], ["reject", "INV-SDK-NO"]] as const) {
    const callId = unique("call");
    const model = scriptedModel(callId, { invoice, amount: 7 });
    const first = await generateText({ model, tools: { pay }, prompt: `pay ${invoice}`, stopWhen: stepCountIs(3) });
    const requests = first.content.filter((p) => p.type === "tool-approval-request");
    assert.equal(requests.length, 1); // the policy parked it: the SDK stops and asks
    assert.equal(calls.filter((c) => c.invoice === invoice).length, 0);

    const answering = answerToolApprovals(rp, first, { tools: { pay: gate } });
    const approvalId = await pendingWithKey(app, callId);
    if (decision === "approve") await alice.approve(approvalId, "ok");
    else await alice.reject(approvalId, "over budget");
    const answer = await answering;
    assert.ok(answer);
    const messages: ModelMessage[] = [{ role: "user", content: `pay ${invoice}` }, ...first.response.messages, answer];
    const second = await generateText({ model, tools: { pay }, messages, stopWhen: stepCountIs(3) });
    if (decision === "approve") {
      assert.deepEqual(calls.filter((c) => c.invoice === invoice), [{ invoice, amount: 7 }]);
      assert.match(second.text, /paid INV-SDK/);
    } else {
      assert.equal(calls.filter((c) => c.invoice === invoice).length, 0);
      assert.match(JSON.stringify(second.response.messages), /over budget/);
    }
  }

  // A call the policy allows outright needs no approval step at all.
  const read = tool({ description: "Reads", inputSchema: jsonSchema<{ q: string }>({ type: "object", properties: { q: { type: "string" } } }),
    needsApproval: needsApprovalFrom(rp, { topic: "knowledge.read" }), execute: async () => "answer" });
  const readModel = new MockLanguageModelV3({ doGenerate: [
    { content: [{ type: "tool-call", toolCallId: unique("r"), toolName: "read", input: '{"q":"x"}' }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] },
    { content: [{ type: "text", text: "ok" }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] },
  ] });
  const readResult = await generateText({ model: readModel, tools: { read }, prompt: "read", stopWhen: stepCountIs(3) });
  assert.equal(readResult.text, "ok");
});
