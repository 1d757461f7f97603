import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  AlreadyStarted, ApprovalRejected, Forbidden, IdempotencyKeyReused, InvalidRequest, JobChanged, NotFound, PolicyDenied,
  PolicyThrottled, ReceiptInvalid, ReceiptPending, ReviewerPortalClient, SnapshotChanged, Unauthorized, Unreachable,
  WaitTimeout, requireApproval,
} from "../src/index.js";
import { App, pendingWithKey, unique } from "./support.js";

const PAY = "finance.payment.execute";
const app = new App();
let rp: ReviewerPortalClient;
let alice: ReviewerPortalClient;

before(async () => {
  await app.start();
  rp = new ReviewerPortalClient(app.url, "demo-acme-agent");
  alice = new ReviewerPortalClient(app.url, "demo-alice-token");
});
after(() => app.dispose());

test("submit, wait, approve and verify the receipt offline (WebCrypto)", async () => {
  const job = await rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-1", amount: 420 }, idempotencyKey: unique("pay") });
  assert.equal(job.decision, "require_human");
  const waiting = rp.wait(job.approvalId!, { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 300));
  const decided = await alice.approve(job.approvalId!, "validated", { jobHash: job.jobHash, policySnapshot: job.policySnapshot });
  assert.equal(decided.result, "approved");
  const approval = await waiting;
  assert.equal(approval.state, "approved");
  assert.equal(approval.decidedBy, "alice");

  const receipt = await rp.getReceipt(approval.id);
  const claims = await rp.verifyReceipt(receipt, job.jobHash);
  assert.equal(claims.approvalId, approval.id);
  assert.deepEqual(claims.deciders, ["alice"]);
  await assert.rejects(rp.verifyReceipt(receipt, "0".repeat(64)), (e) => e instanceof ReceiptInvalid && e.reason === "a different job");
  await assert.rejects(rp.verifyReceipt({ ...receipt, payload: receipt.payload.replace('"approved"', '"approved" ') }, job.jobHash),
    (e) => e instanceof ReceiptInvalid && e.reason === "bad signature");
  const flipped = (receipt.signature[0] === "A" ? "B" : "A") + receipt.signature.slice(1);
  await assert.rejects(rp.verifyReceipt({ ...receipt, signature: flipped }, job.jobHash),
    (e) => e instanceof ReceiptInvalid && e.reason === "bad signature");
});

test("every error is a typed exception carrying its code", async () => {
  const key = unique("k");
  const job = await rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-3", amount: 5 }, idempotencyKey: key });
  await assert.rejects(rp.getReceipt(job.approvalId!), ReceiptPending);
  await assert.rejects(alice.approve(job.approvalId!, undefined, { jobHash: "f".repeat(64) }),
    (e) => e instanceof JobChanged && e.status === 409 && e.code === "job_changed");
  await assert.rejects(alice.approve(job.approvalId!, undefined, { policySnapshot: "0".repeat(64) }), SnapshotChanged);
  await assert.rejects(rp.approve(job.approvalId!), Forbidden);
  await assert.rejects(new ReviewerPortalClient(app.url, "demo-gina-token").approve(job.approvalId!), NotFound);
  await assert.rejects(rp.submit({ topic: "", env: "production", payload: {} }),
    (e) => e instanceof InvalidRequest && "topic" in e.errors);
  await assert.rejects(rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-3", amount: 6 }, idempotencyKey: key }), IdempotencyKeyReused);
  await assert.rejects(rp.submit({ topic: "secrets.export", env: "production", payload: {} }),
    (e) => e instanceof PolicyDenied && e.ruleId === "deny-secrets-export");
  await assert.rejects(async () => {
    for (let i = 0; i < 20; i++) await rp.submit({ topic: "email.bulk_send", env: "production", payload: { n: unique("m") } });
  }, (e) => e instanceof PolicyThrottled && e.retryAfter !== undefined);
  await assert.rejects(new ReviewerPortalClient(app.url, "not-a-key").get(job.approvalId!), Unauthorized);
});

test("wait returns the pending approval at the deadline, and Unreachable when no server ever answered", async () => {
  const job = await rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-6" } });
  assert.equal((await rp.wait(job.approvalId!, { timeoutMs: 1500 })).state, "pending");
  await assert.rejects(new ReviewerPortalClient("http://127.0.0.1:9", "x").wait("apr_x", { timeoutMs: 1000 }), Unreachable);
});

test("wait resumes across a server restart", async () => {
  const job = await rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-7" }, idempotencyKey: unique("restart") });
  let settled = false;
  const waiting = rp.wait(job.approvalId!, { timeoutMs: 240_000 }).finally(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 1000));
  await app.stop({ crash: true }); // killed: the long-poll's connection drops, the server is gone for a while
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(settled, false);
  await app.start();
  await alice.approve(job.approvalId!, "after the restart");
  const approval = await waiting;
  assert.equal(approval.state, "approved");
  assert.equal(approval.reason, "after the restart");
});

test("changes requested, resubmit and withdraw; cases", async () => {
  const job = await rp.submit({ topic: PAY, env: "production", payload: { invoice: "INV-9", amount: 900 } });
  await alice.requestChanges(job.approvalId!, "attach the purchase order");
  const approval = await rp.wait(job.approvalId!, { timeoutMs: 30_000 });
  assert.equal(approval.state, "changes_requested");
  const resubmitted = await rp.resubmit(approval.id, { invoice: "INV-9", amount: 900, po: "PO-1" }, unique("v2"));
  assert.equal(resubmitted.result, "resubmitted");
  assert.equal(Number(resubmitted.approval.version), 2);
  assert.equal((await rp.withdraw(approval.id, "not needed")).state, "withdrawn");

  let kyc = await rp.openCase("Onboarding Initech", ["passport"], { idempotencyKey: unique("kyc") });
  assert.equal(kyc.state, "documents_requested");
  kyc = await rp.submitDocuments(kyc.id, { passport: "s3://kyc/p.pdf" });
  kyc = await alice.decideCase(kyc.id, "approve", "complete");
  assert.equal((await rp.getCase(kyc.id)).state, "approved");
});

test("requireApproval runs once when approved, with the approved arguments; a retry returns the recorded result", async () => {
  const calls: unknown[] = [];
  const pay = requireApproval(rp, { topic: PAY, timeoutMs: 60_000 }, async (args: { invoice: string; amount: number }) => {
    calls.push(args);
    return `paid ${args.invoice}`;
  });
  const key = unique("call");
  const running = pay({ invoice: "INV-1", amount: 420 }, { idempotencyKey: key });
  const approvalId = await pendingWithKey(app, key);
  assert.deepEqual(calls, []);
  await alice.approve(approvalId, "ok");
  assert.equal(await running, "paid INV-1");
  assert.equal(await pay({ invoice: "INV-1", amount: 420 }, { idempotencyKey: key }), "paid INV-1");
  assert.deepEqual(calls, [{ invoice: "INV-1", amount: 420 }]);
});

test("requireApproval never runs twice after a crash mid-run, and refusals throw or return the reason", async () => {
  let runs = 0;
  const crashing = requireApproval(rp, { topic: PAY, timeoutMs: 60_000 }, async (_: { invoice: string }) => {
    runs++;
    throw new Error("the process died half-way");
  });
  const key = unique("crash");
  const first = crashing({ invoice: "INV-C" }, { idempotencyKey: key }).catch((e: unknown) => e);
  await alice.approve(await pendingWithKey(app, key), "ok");
  assert.match(String(await first), /died half-way/);
  await assert.rejects(crashing({ invoice: "INV-C" }, { idempotencyKey: key }), AlreadyStarted);
  assert.equal(runs, 1);

  const soft = requireApproval(rp, { topic: PAY, timeoutMs: 60_000, onReject: "return" }, async (_: { invoice: string }) => "paid");
  const softKey = unique("soft");
  const softly = soft({ invoice: "INV-S" }, { idempotencyKey: softKey });
  await alice.reject(await pendingWithKey(app, softKey), "duplicate invoice");
  assert.equal(await softly, "rejected: duplicate invoice");

  const hard = requireApproval(rp, { topic: PAY, timeoutMs: 60_000 }, async (_: { invoice: string }) => "paid");
  const hardKey = unique("hard");
  const hardly = hard({ invoice: "INV-H" }, { idempotencyKey: hardKey }).catch((e: unknown) => e);
  await alice.reject(await pendingWithKey(app, hardKey), "wrong vendor");
  const refused = await hardly;
  assert.ok(refused instanceof ApprovalRejected && refused.state === "rejected" && refused.reason === "wrong vendor");

  const slow = requireApproval(rp, { topic: PAY, timeoutMs: 1000 }, async (a: { invoice: string }) => `paid ${a.invoice}`);
  const slowKey = unique("slow");
  const timedOut = await slow({ invoice: "INV-T" }, { idempotencyKey: slowKey }).catch((e: unknown) => e);
  assert.ok(timedOut instanceof WaitTimeout);
  await alice.approve(timedOut.approvalId, "later");
  assert.equal(await slow({ invoice: "INV-T" }, { idempotencyKey: slowKey }), "paid INV-T");
});
