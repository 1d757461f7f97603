"""ReviewerPortal client: route risky agent actions through human approval.

>>> from reviewerportal import Client, require_approval
>>> rp = Client("http://localhost:5080", "demo-acme-agent")
>>> @require_approval(rp, topic="finance.payment.execute")
... def pay(invoice: str, amount: int) -> str: ...
"""

from .client import AsyncClient, Client, __version__
from .errors import (AlreadyStarted, ApprovalRejected, ApprovalStateConflict, Conflict, Forbidden,
                     IdempotencyKeyReused, InvalidRequest, JobChanged, Locked, LockBusy, NotAnApprover, NotDispatched,
                     NotFound, NotTheSubmitter, PolicyDenied, PolicyThrottled, PolicyUnavailable, ReceiptInvalid,
                     ReceiptPending, RequesterMayNotApprove, ResubmissionWindowClosed, ReviewerPortalError,
                     SnapshotChanged, StoreUnavailable, Superseded, TenantUnavailable, TooManyRequests, TooManyWaits,
                     Unauthorized, Unavailable, Unreachable, WaitTimeout)
from .gate import Gated, require_approval
from .models import (Approval, Case, DecisionResult, PublicKey, Receipt, ReceiptClaims, SideEffect, SubmitResult)
from .receipts import verify_receipt

__all__ = [
    "AsyncClient", "Client", "__version__", "Gated", "require_approval", "verify_receipt",
    "Approval", "Case", "DecisionResult", "PublicKey", "Receipt", "ReceiptClaims", "SideEffect", "SubmitResult",
    "AlreadyStarted", "ApprovalRejected", "ApprovalStateConflict", "Conflict", "Forbidden", "IdempotencyKeyReused",
    "InvalidRequest", "JobChanged", "Locked", "LockBusy", "NotAnApprover", "NotDispatched", "NotFound",
    "NotTheSubmitter", "PolicyDenied", "PolicyThrottled", "PolicyUnavailable", "ReceiptInvalid", "ReceiptPending",
    "RequesterMayNotApprove", "ResubmissionWindowClosed", "ReviewerPortalError", "SnapshotChanged",
    "StoreUnavailable", "Superseded", "TenantUnavailable", "TooManyRequests", "TooManyWaits", "Unauthorized",
    "Unavailable", "Unreachable", "WaitTimeout",
]
