// Runs the graph until ReviewerPortal's interrupt, then exits: the process that started the wait is gone.
// argv: baseUrl checkpointFile threadId callId invoice amount
import { HumanMessage } from "@langchain/core/messages";
import { ReviewerPortalClient } from "../src/index.js";
import { buildGraph } from "./graph.js";
import { FileSaver } from "./support.js";

const [url, file, thread, callId, invoice, amount] = process.argv.slice(2) as [string, string, string, string, string, string];
const rp = new ReviewerPortalClient(url, "demo-acme-agent");
const graph = buildGraph(rp, new FileSaver(file), callId, { invoice, amount: Number(amount) }, async () => {
  throw new Error("the child must never run the tool");
});
const result = await graph.invoke({ messages: [new HumanMessage(`pay ${invoice}`)] }, { configurable: { thread_id: thread } });
const interrupts = (result as { __interrupt__?: { value: { approvalId: string } }[] }).__interrupt__ ?? [];
console.log(JSON.stringify({ interrupted: interrupts.map((i) => i.value.approvalId) }));
process.exit(0);
