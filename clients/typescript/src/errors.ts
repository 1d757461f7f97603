/** Typed errors: every problem `code` of the API is its own class; catch a family (`Conflict`) or one code. */

export type Problem = { type?: string; title?: string; status?: number; detail?: string; code?: string; [k: string]: unknown };

/** An error answer of the API (RFC 7807), with its status and machine-readable code. */
export class ReviewerPortalError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly detail: string;
  readonly problem: Problem;
  /** Seconds to wait before trying again (429, some 503). */
  readonly retryAfter: number | undefined;

  constructor(status: number, code: string | undefined, detail: string, problem: Problem = {}, retryAfter?: number) {
    super(`${status} ${code ?? "error"}: ${detail}`);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** 400: `errors` maps each field at fault to its messages. */
export class InvalidRequest extends ReviewerPortalError {
  get errors(): Record<string, string[]> {
    return (this.problem["errors"] as Record<string, string[]> | undefined) ?? {};
  }
}
export class Unauthorized extends ReviewerPortalError {}
export class Forbidden extends ReviewerPortalError {}
export class NotFound extends ReviewerPortalError {}
export class Conflict extends ReviewerPortalError {}
export class Locked extends ReviewerPortalError {}
export class TooManyRequests extends ReviewerPortalError {}
export class Unavailable extends ReviewerPortalError {}

/** 403 `policy_denied`: `ruleId` names the rule. */
export class PolicyDenied extends Forbidden {
  get ruleId(): string | undefined {
    return this.problem["ruleId"] as string | undefined;
  }
}
export class NotAnApprover extends Forbidden {}
export class RequesterMayNotApprove extends Forbidden {}
export class NotTheSubmitter extends Forbidden {}
export class JobChanged extends Conflict {}
export class SnapshotChanged extends Conflict {}
export class IdempotencyKeyReused extends Conflict {}
export class ResubmissionWindowClosed extends Conflict {}
export class Superseded extends Conflict {}
export class NotDispatched extends Conflict {}
/** 409 `pending`: no receipt while the approval is pending. */
export class ReceiptPending extends Conflict {}
/** 409 whose code is the approval's state (`approved`, `rejected`, `expired`, `withdrawn`, …). */
export class ApprovalStateConflict extends Conflict {}
export class LockBusy extends Locked {}
export class PolicyThrottled extends TooManyRequests {}
export class TooManyWaits extends TooManyRequests {}
export class PolicyUnavailable extends Unavailable {}
export class StoreUnavailable extends Unavailable {}
export class TenantUnavailable extends Unavailable {}

type ErrorClass = new (status: number, code: string | undefined, detail: string, problem?: Problem, retryAfter?: number) => ReviewerPortalError;

export const errorsByCode: Record<string, ErrorClass> = {
  invalid_request: InvalidRequest,
  not_found: NotFound,
  policy_denied: PolicyDenied,
  not_an_approver: NotAnApprover,
  requester_may_not_approve: RequesterMayNotApprove,
  not_the_submitter: NotTheSubmitter,
  job_changed: JobChanged,
  snapshot_changed: SnapshotChanged,
  idempotency_key_reused: IdempotencyKeyReused,
  resubmission_window_closed: ResubmissionWindowClosed,
  superseded: Superseded,
  not_dispatched: NotDispatched,
  pending: ReceiptPending,
  lock_busy: LockBusy,
  policy_throttled: PolicyThrottled,
  too_many_waits: TooManyWaits,
  policy_unavailable: PolicyUnavailable,
  store_unavailable: StoreUnavailable,
  tenant_unavailable: TenantUnavailable,
};

const byStatus: Record<number, ErrorClass> = {
  400: InvalidRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 423: Locked, 429: TooManyRequests, 503: Unavailable,
};

const states = new Set(["approved", "rejected", "expired", "withdrawn", "changes_requested", "resubmitted", "decided",
  "escalated", "in_review", "documents_requested", "closed"]);

/** The typed error for an error answer. */
export function errorFor(status: number, problem: Problem, retryAfter?: number): ReviewerPortalError {
  let code = typeof problem.code === "string" ? problem.code : undefined;
  const prefix = "urn:reviewerportal:problem:";
  if (code === undefined && typeof problem.type === "string" && problem.type.startsWith(prefix)) {
    code = problem.type.slice(prefix.length);
  }
  let cls = code !== undefined ? errorsByCode[code] : undefined;
  if (cls === undefined && status === 409 && code !== undefined && states.has(code)) cls = ApprovalStateConflict;
  cls ??= byStatus[status] ?? ReviewerPortalError;
  return new cls(status, code, String(problem.detail ?? problem.title ?? `HTTP ${status}`), problem, retryAfter);
}

/** A receipt failed offline verification; `reason` says why. */
export class ReceiptInvalid extends Error {
  constructor(readonly reason: string) {
    super(`receipt invalid: ${reason}`);
    this.name = "ReceiptInvalid";
  }
}

/** The caller's deadline passed while the approval was still pending (the approval itself goes on). */
export class WaitTimeout extends Error {
  constructor(readonly approvalId: string) {
    super(`${approvalId} is still pending at the deadline`);
    this.name = "WaitTimeout";
  }
}

/** The server could not be reached (or kept answering 5xx) until the deadline. */
export class Unreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "Unreachable";
  }
}

/** The call was not approved: `state` is `rejected`, `denied`, `expired`, `withdrawn` or `changes_requested`. */
export class ApprovalRejected extends Error {
  constructor(readonly state: string, readonly reason: string | undefined, readonly approvalId?: string) {
    super(reason ? `${state}: ${reason}` : state);
    this.name = "ApprovalRejected";
  }
}

/** An earlier attempt with the same key started the function and never recorded how it ended: never run twice. */
export class AlreadyStarted extends Error {
  constructor(readonly approvalId: string) {
    super(`an earlier attempt already started the function for ${approvalId}; it is not run again`);
    this.name = "AlreadyStarted";
  }
}
