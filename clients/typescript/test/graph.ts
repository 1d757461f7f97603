/** A compiled LangGraph.js agent for the tests: a scripted model step (no model) and a ReviewerPortal-reviewed tool node. */
import { AIMessage, type BaseMessage, ToolMessage } from "@langchain/core/messages";
import { END, MessagesAnnotation, START, StateGraph, type BaseCheckpointSaver } from "@langchain/langgraph";
import type { ReviewerPortalClient } from "../src/index.js";
import { createReviewedToolNode } from "../src/langgraph.js";

export type PayArgs = { invoice: string; amount: number };

/** The scripted model: asks for `pay` once (tool call id `callId`), then reports the tool's answer. */
function scriptedModel(callId: string, args: PayArgs) {
  return async (state: { messages: BaseMessage[] }) => {
    const last = state.messages[state.messages.length - 1];
    if (last instanceof ToolMessage) return { messages: [new AIMessage(`done: ${String(last.content)}`)] };
    return { messages: [new AIMessage({ content: "", tool_calls: [{ id: callId, name: "pay", args, type: "tool_call" }] })] };
  };
}

export function buildGraph(rp: ReviewerPortalClient, checkpointer: BaseCheckpointSaver, callId: string, args: PayArgs,
  pay: (args: PayArgs) => Promise<string>) {
  return new StateGraph(MessagesAnnotation)
    .addNode("agent", scriptedModel(callId, args))
    .addNode("tools", createReviewedToolNode(rp, { pay: { topic: "finance.payment.execute", env: "production", run: pay as (a: never) => unknown } }))
    .addEdge(START, "agent")
    .addConditionalEdges("agent", (s) => ((s.messages[s.messages.length - 1] as AIMessage).tool_calls?.length ? "tools" : END))
    .addEdge("tools", "agent")
    .compile({ checkpointer });
}
