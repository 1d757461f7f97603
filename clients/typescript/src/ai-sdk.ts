/**
 * AI SDK helpers (peer: ai ≥ 6).
 *
 * - `withApproval(rp, tool, { topic })`: the tool's `execute` runs only when ReviewerPortal approves the call (the tool
 *   call id is the idempotency key; at most once per approval); a refusal's reason is the tool's output.
 * - The SDK's own approval step (`needsApproval`): `needsApprovalFrom(rp, { topic })` asks the tenant's policy whether a
 *   call needs a human, and `answerToolApprovals(rp, result, { tools })` answers the `tool-approval-request`s of a
 *   `generateText` result from ReviewerPortal's decisions, as the tool message to send back.
 */
import type { ModelMessage, Tool, ToolApprovalResponse, ToolExecutionOptions } from "ai";
import type { ReviewerPortalClient } from "./client.js";
import { WaitTimeout } from "./errors.js";
import { decideCall, runOnce, submitCall, type GateOptions } from "./gate.js";

const refusalText = (state: string, reason: string | undefined) => `Not approved (${state})${reason ? `: ${reason}` : ""}`;

/** Wraps a `tool()` so its execution goes through ReviewerPortal. The output type widens by the refusal text. */
export function withApproval<INPUT, OUTPUT>(client: ReviewerPortalClient, tool: Tool<INPUT, OUTPUT>, options: GateOptions): Tool<INPUT, OUTPUT | string> {
  const execute = tool.execute;
  if (!execute) throw new TypeError("withApproval needs a tool with execute");
  const run = async (input: INPUT, call: ToolExecutionOptions): Promise<OUTPUT> => {
    const output = execute(input, call);
    if (output && typeof output === "object" && Symbol.asyncIterator in output) {
      let last: OUTPUT | undefined;
      for await (const part of output as AsyncIterable<OUTPUT>) last = part;
      return last as OUTPUT;
    }
    return output as OUTPUT | PromiseLike<OUTPUT>;
  };
  return {
    ...tool,
    execute: async (input: INPUT, call: ToolExecutionOptions): Promise<OUTPUT | string> => {
      const verdict = await decideCall(client, options, input, call.toolCallId, call.abortSignal);
      switch (verdict.kind) {
        case "allowed":
          return run(input, call);
        case "approved":
          return runOnce(client, verdict.approval, (approved: INPUT) => run(approved, call), options.verifyReceipt ?? true);
        case "refused":
          return refusalText(verdict.state, verdict.reason);
        case "pending":
          throw new WaitTimeout(verdict.approvalId);
      }
    },
  } as Tool<INPUT, OUTPUT | string>;
}

/**
 * A `needsApproval` function: submits the call to ReviewerPortal (the tool call id is the idempotency key) and
 * answers true unless the tenant's policy allows it outright, so only calls the policy parks (or denies) stop at
 * the SDK's approval step.
 */
export function needsApprovalFrom(client: ReviewerPortalClient, options: GateOptions) {
  return async (input: unknown, call: { toolCallId: string }): Promise<boolean> =>
    (await submitCall(client, options, input, call.toolCallId)).kind !== "allowed";
}

type ApprovalRequestPart = { type: "tool-approval-request"; approvalId: string; toolCall: { toolCallId: string; toolName: string; input: unknown } };

/**
 * Answers every `tool-approval-request` of a `generateText`/`streamText` step from ReviewerPortal: submits the call
 * (same tool call id → same approval), waits for the decision, and returns the `tool` message with one
 * `tool-approval-response` per request (approved, or denied with the reviewer's reason). Append it after
 * `result.response.messages` and call the model again; the SDK then runs the approved tools.
 * Throws WaitTimeout when a decision does not arrive within `timeoutMs` (call again: it attaches to the same approval).
 */
export async function answerToolApprovals(client: ReviewerPortalClient,
  result: { content: ReadonlyArray<{ type: string }> }, options: { tools: Record<string, GateOptions>; signal?: AbortSignal }): Promise<ModelMessage | undefined> {
  const requests = result.content.filter((p): p is ApprovalRequestPart => p.type === "tool-approval-request");
  if (requests.length === 0) return undefined;
  const answers: ToolApprovalResponse[] = [];
  for (const request of requests) {
    const gate = options.tools[request.toolCall.toolName];
    if (!gate) {
      answers.push({ type: "tool-approval-response", approvalId: request.approvalId, approved: false,
        reason: `ReviewerPortal has no topic for ${request.toolCall.toolName}` });
      continue;
    }
    const verdict = await decideCall(client, gate, request.toolCall.input, request.toolCall.toolCallId, options.signal);
    if (verdict.kind === "pending") throw new WaitTimeout(verdict.approvalId);
    answers.push(verdict.kind === "refused"
      ? { type: "tool-approval-response", approvalId: request.approvalId, approved: false, reason: refusalText(verdict.state, verdict.reason) }
      : { type: "tool-approval-response", approvalId: request.approvalId, approved: true,
        ...(verdict.kind === "approved" && verdict.approval.reason ? { reason: verdict.approval.reason } : {}) });
  }
  return { role: "tool", content: answers };
}
