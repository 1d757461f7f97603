"""Typed errors: every problem ``code`` of the API is its own exception class.

All API errors derive from :class:`ReviewerPortalError` and carry the HTTP ``status``, the problem ``code``, the
human ``detail`` and the whole RFC 7807 ``problem`` document. Catch a family (``Conflict``, ``Forbidden``) or one
code (``JobChanged``, ``NotAnApprover``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type


class ReviewerPortalError(Exception):
    """An error answer of the API (RFC 7807 problem document)."""

    status: int
    code: Optional[str]
    detail: str
    problem: Dict[str, Any]

    def __init__(self, status: int, code: Optional[str], detail: str, problem: Optional[Mapping[str, Any]] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(f"{status} {code or 'error'}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = dict(problem or {})
        self.retry_after = retry_after


# Families by status -------------------------------------------------------------------------------------------

class InvalidRequest(ReviewerPortalError):
    """400: ``errors`` maps each field at fault (``topic``, ``escalation[0].sla``) to its messages."""

    @property
    def errors(self) -> Dict[str, List[str]]:
        errors = self.problem.get("errors") or {}
        return {str(k): [str(m) for m in v] for k, v in errors.items()}


class Unauthorized(ReviewerPortalError):
    """401: the key or token is missing, unknown or revoked."""


class Forbidden(ReviewerPortalError):
    """403: the caller may not do this."""


class NotFound(ReviewerPortalError):
    """404 ``not_found``: no such approval, case, job or tenant for this caller (another tenant's is a 404 too)."""


class Conflict(ReviewerPortalError):
    """409: the state or the bound job/snapshot does not allow this."""


class Locked(ReviewerPortalError):
    """423 ``lock_busy``: another decision holds the approval's lock; try again."""


class TooManyRequests(ReviewerPortalError):
    """429: ``retry_after`` says when to try again."""


class Unavailable(ReviewerPortalError):
    """503: a store or the policy is unavailable; transient."""


# One class per code ------------------------------------------------------------------------------------------

class PolicyDenied(Forbidden):
    """403 ``policy_denied``: the tenant's policy denies the job (``rule_id`` names the rule)."""

    @property
    def rule_id(self) -> Optional[str]:
        value = self.problem.get("ruleId")
        return str(value) if value is not None else None


class NotAnApprover(Forbidden):
    """403 ``not_an_approver``: the account is not an approver of the tenant at this escalation level."""


class RequesterMayNotApprove(Forbidden):
    """403 ``requester_may_not_approve``: separation of duties, the person the agent acts for may not approve."""


class NotTheSubmitter(Forbidden):
    """403 ``not_the_submitter``: only the agent key that submitted may resubmit or withdraw."""


class JobChanged(Conflict):
    """409 ``job_changed``: the job hash given does not match the approval's job."""


class SnapshotChanged(Conflict):
    """409 ``snapshot_changed``: the policy snapshot given does not match the approval's."""


class IdempotencyKeyReused(Conflict):
    """409 ``idempotency_key_reused``: the key was first used for a different job."""


class ResubmissionWindowClosed(Conflict):
    """409 ``resubmission_window_closed``: too late (or too many times) to resubmit."""


class Superseded(Conflict):
    """409 ``superseded``: a newer version of the approval exists."""


class NotDispatched(Conflict):
    """409 ``not_dispatched``: a result was reported for a job that is not dispatched."""


class ReceiptPending(Conflict):
    """409 ``pending``: the approval is still pending, so there is no receipt yet."""


class ApprovalStateConflict(Conflict):
    """409 whose code is the approval's state (``approved``, ``rejected``, ``expired``, ``withdrawn``, …)."""


class LockBusy(Locked):
    """423 ``lock_busy``."""


class PolicyThrottled(TooManyRequests):
    """429 ``policy_throttled``: the policy throttles this topic; ``retry_after`` seconds."""


class TooManyWaits(TooManyRequests):
    """429 ``too_many_waits``: this key already holds the most open long-polls the server allows."""


class PolicyUnavailable(Unavailable):
    """503 ``policy_unavailable``: the tenant's policy could not be read; nothing was decided."""


class StoreUnavailable(Unavailable):
    """503 ``store_unavailable``: Redis, SQLite or PostgreSQL is unavailable."""


class TenantUnavailable(Unavailable):
    """503 ``tenant_unavailable``."""


BY_CODE: Dict[str, Type[ReviewerPortalError]] = {
    "invalid_request": InvalidRequest,
    "not_found": NotFound,
    "policy_denied": PolicyDenied,
    "not_an_approver": NotAnApprover,
    "requester_may_not_approve": RequesterMayNotApprove,
    "not_the_submitter": NotTheSubmitter,
    "job_changed": JobChanged,
    "snapshot_changed": SnapshotChanged,
    "idempotency_key_reused": IdempotencyKeyReused,
    "resubmission_window_closed": ResubmissionWindowClosed,
    "superseded": Superseded,
    "not_dispatched": NotDispatched,
    "pending": ReceiptPending,
    "lock_busy": LockBusy,
    "policy_throttled": PolicyThrottled,
    "too_many_waits": TooManyWaits,
    "policy_unavailable": PolicyUnavailable,
    "store_unavailable": StoreUnavailable,
    "tenant_unavailable": TenantUnavailable,
}

BY_STATUS: Dict[int, Type[ReviewerPortalError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    423: Locked,
    429: TooManyRequests,
    503: Unavailable,
}

_STATES = {"approved", "rejected", "expired", "withdrawn", "changes_requested", "resubmitted", "decided",
           "escalated", "in_review", "documents_requested", "closed"}


def error_for(status: int, problem: Mapping[str, Any], retry_after: Optional[float] = None) -> ReviewerPortalError:
    """The typed exception for an error answer."""
    code = problem.get("code")
    if not isinstance(code, str):
        kind = problem.get("type")
        prefix = "urn:reviewerportal:problem:"
        code = kind[len(prefix):] if isinstance(kind, str) and kind.startswith(prefix) else None
    cls = BY_CODE.get(code or "")
    if cls is None and status == 409 and code in _STATES:
        cls = ApprovalStateConflict
    if cls is None:
        cls = BY_STATUS.get(status, ReviewerPortalError)
    detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    return cls(status, code, str(detail), problem, retry_after)


# Errors of the client itself -----------------------------------------------------------------------------------

class ReceiptInvalid(Exception):
    """A receipt failed offline verification; ``reason`` says why (``bad signature``, ``expired``, ``a different job``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"receipt invalid: {reason}")
        self.reason = reason


class WaitTimeout(Exception):
    """The caller's deadline passed while the approval was still pending (the approval itself goes on)."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"{approval_id} is still pending at the deadline")
        self.approval_id = approval_id


class Unreachable(Exception):
    """The server could not be reached (or kept answering 5xx) until the deadline."""


class ApprovalRejected(Exception):
    """``require_approval``: the call was not approved. ``state`` is ``rejected``, ``denied``, ``expired``,
    ``withdrawn`` or ``changes_requested``; ``reason`` is the reviewer's (or the policy's) explanation."""

    def __init__(self, state: str, reason: Optional[str], approval_id: Optional[str] = None) -> None:
        super().__init__(f"{state}: {reason}" if reason else state)
        self.state = state
        self.reason = reason
        self.approval_id = approval_id


class AlreadyStarted(Exception):
    """``require_approval``: an earlier attempt with the same idempotency key started the function and did not
    record how it ended (it crashed while running). The function is never run a second time."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"an earlier attempt already started the function for {approval_id}; it is not run again")
        self.approval_id = approval_id
