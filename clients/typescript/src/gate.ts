/**
 * requireApproval: route any tool function through ReviewerPortal. Its argument object becomes the job's payload;
 * the function runs only when approved, with the approved arguments (the payload the server holds, bound by the job
 * hash). An idempotency key from the caller (a tool call id) attaches a retry to the same approval, and a claim
 * recorded on the approval before the function starts makes sure it never runs twice for one approval.
 */
import type { ReviewerPortalClient } from "./client.js";
import { AlreadyStarted, ApprovalRejected, PolicyDenied, WaitTimeout } from "./errors.js";
import type { Approval } from "./types.js";

export const STARTED = "require_approval:started";
export const RESULT = "require_approval:result";

export interface GateOptions {
  topic: string;
  env?: string;
  channel?: string;
  priority?: string;
  /** How long one call waits for the decision (default one hour); a retry with the same key waits on. */
  timeoutMs?: number;
  /** Check the approval's signed receipt offline before running (default true). */
  verifyReceipt?: boolean;
}

/** Where a submitted call stands. */
export type Verdict =
  | { kind: "allowed"; payload: unknown }
  | { kind: "approved"; approval: Approval; payload: unknown }
  | { kind: "refused"; state: string; reason: string | undefined; approvalId: string | undefined }
  | { kind: "pending"; approvalId: string };

/** Submits a call (the same key: the same approval) and returns where it stands, without waiting. */
export async function submitCall(client: ReviewerPortalClient, options: GateOptions, payload: unknown,
  idempotencyKey: string | undefined): Promise<Verdict> {
  try {
    const submitted = await client.submit({ topic: options.topic, env: options.env ?? "production", channel: options.channel,
      priority: options.priority, payload, idempotencyKey });
    if (submitted.decision !== "require_human" || !submitted.approvalId) return { kind: "allowed", payload };
    return { kind: "pending", approvalId: submitted.approvalId };
  } catch (error) {
    if (error instanceof PolicyDenied) return { kind: "refused", state: "denied", reason: error.detail, approvalId: undefined };
    throw error;
  }
}

/** The verdict an approval that left `pending` carries. */
export function verdictOf(approval: Approval): Verdict {
  if (approval.state === "pending") return { kind: "pending", approvalId: approval.id };
  if (approval.state === "approved") return { kind: "approved", approval, payload: approval.job.payload };
  const reason = approval.state === "changes_requested" ? approval.changesReason : approval.reason;
  return { kind: "refused", state: approval.state, reason: reason ?? undefined, approvalId: approval.id };
}

/** Submits, waits up to `timeoutMs`, and returns the verdict (pending when the deadline passed). */
export async function decideCall(client: ReviewerPortalClient, options: GateOptions, payload: unknown,
  idempotencyKey: string | undefined, signal?: AbortSignal): Promise<Verdict> {
  const submitted = await submitCall(client, options, payload, idempotencyKey);
  if (submitted.kind !== "pending") return submitted;
  return verdictOf(await client.wait(submitted.approvalId, { timeoutMs: options.timeoutMs ?? 3_600_000, signal }));
}

/**
 * Runs `fn` for an approved call at most once per approval: a claim is recorded before it starts and its result
 * after; a second attempt returns the recorded result (AlreadyStarted when the first never finished).
 */
export async function runOnce<R>(client: ReviewerPortalClient, approval: Approval, fn: (payload: never) => R | Promise<R>,
  verify = true): Promise<R> {
  const bound = { jobHash: approval.jobHash };
  if (verify) await client.verifyReceipt(await client.getReceipt(approval.id), approval.jobHash);
  const claim = await client.recordSideEffect(approval.id, STARTED, { startedAt: new Date().toISOString() }, bound);
  if (!claim.firstTime) {
    const stored = await client.recordSideEffect(approval.id, RESULT, { outcome: "unknown" }, bound);
    const record = stored.result as { outcome?: string; value?: R } | null;
    if (record?.outcome === "returned" && "value" in record) return record.value as R;
    throw new AlreadyStarted(approval.id);
  }
  const value = await fn(approval.job.payload as never);
  let recorded: unknown;
  try {
    recorded = { outcome: "returned", value: JSON.parse(JSON.stringify(value ?? null)) as unknown };
  } catch {
    recorded = { outcome: "returned_unrecordable" };
  }
  await client.recordSideEffect(approval.id, RESULT, recorded, bound);
  return value;
}

export interface GatedCall {
  /** A tool call id: a retry with it attaches to the same approval and never runs the function twice. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

/** Wraps `fn(args)`; a refusal throws ApprovalRejected (or, with onReject "return", resolves to its text). */
export function requireApproval<A, R>(client: ReviewerPortalClient, options: GateOptions & { onReject?: "throw" },
  fn: (args: A) => R | Promise<R>): (args: A, call?: GatedCall) => Promise<R>;
export function requireApproval<A, R>(client: ReviewerPortalClient, options: GateOptions & { onReject: "return" },
  fn: (args: A) => R | Promise<R>): (args: A, call?: GatedCall) => Promise<R | string>;
export function requireApproval<A, R>(client: ReviewerPortalClient, options: GateOptions & { onReject?: "throw" | "return" },
  fn: (args: A) => R | Promise<R>): (args: A, call?: GatedCall) => Promise<R | string> {
  return async (args: A, call: GatedCall = {}) => {
    const verdict = await decideCall(client, options, args, call.idempotencyKey, call.signal);
    switch (verdict.kind) {
      case "allowed":
        return fn(args);
      case "approved":
        return runOnce(client, verdict.approval, fn as (payload: never) => R, options.verifyReceipt ?? true);
      case "pending":
        throw new WaitTimeout(verdict.approvalId);
      case "refused": {
        const refusal = new ApprovalRejected(verdict.state, verdict.reason, verdict.approvalId);
        if (options.onReject === "return") return refusal.message;
        throw refusal;
      }
    }
  };
}
