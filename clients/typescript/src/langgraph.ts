/**
 * LangGraph.js helpers (peer: @langchain/langgraph, @langchain/core). A reviewed tool call becomes a ReviewerPortal
 * approval and an `interrupt()`; the graph is resumed with `Command({ resume })` when the decision arrives, by any
 * process that holds the checkpointer (the one that started the wait may be long gone).
 *
 * ```ts
 * const tools = createReviewedToolNode(rp, { pay: { topic: "finance.payment.execute", run: pay } });
 * graph.addNode("tools", tools);                                      // interrupts while a human decides
 * await resumeWhenDecided(rp, app, { configurable: { thread_id } });  // later, anywhere
 * ```
 */
import { Command, interrupt } from "@langchain/langgraph";
import { ToolMessage, type AIMessage, type BaseMessage } from "@langchain/core/messages";
import type { ReviewerPortalClient } from "./client.js";
import { WaitTimeout } from "./errors.js";
import { runOnce, submitCall, verdictOf, type GateOptions, type Verdict } from "./gate.js";
import type { Approval } from "./types.js";

/** The value a reviewed tool call interrupts with (what `getState().tasks[].interrupts[].value` shows). */
export interface ApprovalInterrupt {
  kind: "reviewerportal.approval";
  approvalId: string;
  toolCallId: string;
  toolName: string;
  args: unknown;
}

export interface ToolCallLike {
  id?: string;
  name: string;
  args: unknown;
}

export interface ReviewedTool extends GateOptions {
  /** Runs the tool with the approved arguments (at most once per approval). */
  run: (args: never) => unknown;
}

const isApprovalInterrupt = (value: unknown): value is ApprovalInterrupt =>
  typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "reviewerportal.approval";

function content(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value ?? null);
}

/**
 * Inside a graph node: submits the tool call (its id is the idempotency key, so the node re-running on resume
 * attaches to the same approval), interrupts until the decision arrives, then answers with the tool message:
 * the tool's output when approved (run once, with the approved arguments), the reviewer's reason when not.
 */
export async function reviewToolCall(client: ReviewerPortalClient, call: ToolCallLike, tool: ReviewedTool): Promise<ToolMessage> {
  const toolCallId = call.id ?? "";
  let verdict: Verdict = await submitCall(client, tool, call.args, call.id);
  while (verdict.kind === "pending") {
    const request: ApprovalInterrupt = { kind: "reviewerportal.approval", approvalId: verdict.approvalId, toolCallId,
      toolName: call.name, args: call.args };
    interrupt<ApprovalInterrupt, Approval>(request);
    // The resume value only says "look again": the decision is read from the server, never taken from the caller.
    verdict = verdictOf(await client.get(verdict.approvalId));
  }
  if (verdict.kind === "refused") {
    return new ToolMessage({ tool_call_id: toolCallId, name: call.name, status: "error",
      content: `Not approved (${verdict.state})${verdict.reason ? `: ${verdict.reason}` : ""}` });
  }
  const output = verdict.kind === "approved"
    ? await runOnce(client, verdict.approval, tool.run, tool.verifyReceipt ?? true)
    : await tool.run(verdict.payload as never);
  return new ToolMessage({ tool_call_id: toolCallId, name: call.name, content: content(output) });
}

/**
 * A node for a `MessagesAnnotation`-style graph: reviews every tool call of the last AI message, one after another,
 * and returns their tool messages. Unknown tools answer with an error message.
 */
export function createReviewedToolNode(client: ReviewerPortalClient, tools: Record<string, ReviewedTool>) {
  return async (state: { messages: BaseMessage[] }): Promise<{ messages: ToolMessage[] }> => {
    const last = state.messages[state.messages.length - 1] as AIMessage | undefined;
    const messages: ToolMessage[] = [];
    for (const call of last?.tool_calls ?? []) {
      const tool = tools[call.name];
      messages.push(tool
        ? await reviewToolCall(client, call, tool)
        : new ToolMessage({ tool_call_id: call.id ?? "", name: call.name, status: "error", content: `Unknown tool ${call.name}` }));
    }
    return { messages };
  };
}

/** The approvals a thread is interrupted on. */
export async function pendingApprovals(graph: { getState(config: object): Promise<{ tasks: readonly { interrupts: readonly { id?: string; value?: unknown }[] }[] }> },
  config: object): Promise<{ interruptId: string | undefined; request: ApprovalInterrupt }[]> {
  const snapshot = await graph.getState(config);
  return snapshot.tasks.flatMap((task) => task.interrupts)
    .filter((i) => isApprovalInterrupt(i.value))
    .map((i) => ({ interruptId: i.id, request: i.value as ApprovalInterrupt }));
}

/**
 * Waits (long-poll, across reconnects) until every approval the thread is interrupted on is decided, then resumes
 * the graph with `Command({ resume })` and returns what `invoke` returns. Undefined when the thread waits on none.
 * When the deadline passes first, WaitTimeout is thrown and the thread stays interrupted: call again later.
 */
export async function resumeWhenDecided<T>(client: ReviewerPortalClient,
  graph: { getState(config: object): Promise<{ tasks: readonly { interrupts: readonly { id?: string; value?: unknown }[] }[] }>;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a compiled graph's invoke takes its own Command type
    invoke(input: any, config: object): Promise<T> },
  config: object, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<T | undefined> {
  const pending = await pendingApprovals(graph, config);
  if (pending.length === 0) return undefined;
  const decided: Record<string, Approval> = {};
  for (const { interruptId, request } of pending) {
    const approval = await client.wait(request.approvalId, { timeoutMs: options.timeoutMs ?? 3_600_000, signal: options.signal });
    if (approval.state === "pending") throw new WaitTimeout(approval.id);
    decided[interruptId ?? request.approvalId] = approval;
  }
  const values = Object.values(decided);
  const resume = pending.length === 1 ? values[0] : decided;
  return graph.invoke(new Command({ resume }), config);
}
