"""What the API answers, as small typed records. ``raw`` keeps the whole JSON object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional


def parse_time(value: Any) -> Optional[datetime]:
    """ISO 8601 as the server writes it (7 fraction digits, ``+00:00`` or ``Z``) to an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Python 3.10's fromisoformat takes at most 6 fraction digits.
    if "." in text:
        head, _, tail = text.partition(".")
        digits = ""
        while tail and tail[0].isdigit():
            digits, tail = digits + tail[0], tail[1:]
        text = f"{head}.{(digits + '000000')[:6]}{tail}"
    return datetime.fromisoformat(text)


def _str(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Receipt:
    """A signed receipt: verify ``payload`` (these exact bytes) with the tenant's key ``kid``."""

    payload: str
    signature: str
    kid: str

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Receipt":
        return Receipt(str(data["payload"]), str(data["signature"]), str(data["kid"]))


@dataclass(frozen=True)
class ReceiptClaims:
    """What a verified receipt states."""

    approval_id: str
    tenant: str
    job_id: str
    job_hash: str
    policy_snapshot: str
    decision: str
    deciders: List[str]
    decided_at: datetime
    issued_at: datetime
    expires_at: datetime
    kid: str


@dataclass(frozen=True)
class PublicKey:
    """A tenant's receipt-signing public key (ECDSA P-256, SubjectPublicKeyInfo, base64)."""

    kid: str
    public_key: str
    created_at: Optional[datetime]
    retired_at: Optional[datetime]

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "PublicKey":
        return PublicKey(str(data["kid"]), str(data["publicKey"]), parse_time(data.get("createdAt")),
                         parse_time(data.get("retiredAt")))


@dataclass(frozen=True)
class SubmitResult:
    """The policy's answer to a submit: ``allow`` (run it) or ``require_human`` (wait for ``approval_id``).
    Deny and throttle raise :class:`~reviewerportal.errors.PolicyDenied` / :class:`~reviewerportal.errors.PolicyThrottled`."""

    decision: str
    job_id: str
    state: str
    policy_snapshot: str
    job_hash: str
    approval_id: Optional[str] = None
    rule_id: Optional[str] = None
    expires_at: Optional[datetime] = None
    replayed: bool = False
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def needs_human(self) -> bool:
        return self.decision == "require_human"

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "SubmitResult":
        return SubmitResult(str(data["decision"]), str(data["jobId"]), str(data["state"]), str(data["policySnapshot"]),
                            str(data["jobHash"]), _str(data, "approvalId"), _str(data, "ruleId"),
                            parse_time(data.get("expiresAt")), bool(data.get("replayed", False)), dict(data))


@dataclass(frozen=True)
class Approval:
    """An approval as the API returns it."""

    id: str
    tenant: str
    job_id: str
    state: str
    policy_snapshot: str
    job_hash: str
    job: Dict[str, Any]
    version: int = 1
    rule_id: Optional[str] = None
    created_at: Optional[datetime] = None
    expires_at: Optional[datetime] = None
    decided_at: Optional[datetime] = None
    decided_by: Optional[str] = None
    reason: Optional[str] = None
    changes_requested_by: Optional[str] = None
    changes_reason: Optional[str] = None
    resubmit_by: Optional[datetime] = None
    edited: bool = False
    edited_by: Optional[str] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def payload(self) -> Any:
        """The job's payload as submitted (or as last resubmitted, or as a reviewer edited it before approving: ``edited``)."""
        return self.job.get("payload")

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"

    @property
    def is_approved(self) -> bool:
        return self.state == "approved"

    @property
    def is_changes_requested(self) -> bool:
        return self.state == "changes_requested"

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Approval":
        return Approval(
            id=str(data["id"]), tenant=str(data["tenant"]), job_id=str(data["jobId"]), state=str(data["state"]),
            policy_snapshot=str(data["policySnapshot"]), job_hash=str(data["jobHash"]), job=dict(data.get("job") or {}),
            version=int(data.get("version") or 1), rule_id=_str(data, "ruleId"),
            created_at=parse_time(data.get("createdAt")), expires_at=parse_time(data.get("expiresAt")),
            decided_at=parse_time(data.get("decidedAt")), decided_by=_str(data, "decidedBy"),
            reason=_str(data, "reason"), changes_requested_by=_str(data, "changesRequestedBy"),
            changes_reason=_str(data, "changesReason"), resubmit_by=parse_time(data.get("resubmitBy")),
            edited=bool(data.get("edited", False)), edited_by=_str(data, "editedBy"), raw=dict(data))


@dataclass(frozen=True)
class DecisionResult:
    """The answer to approve / reject / request-changes / resubmit / withdraw: ``result`` is e.g. ``approved``,
    ``already_approved``, ``vote_recorded``, ``resubmitted``."""

    result: str
    state: str
    approval: Approval
    receipt: Optional[Receipt] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "DecisionResult":
        receipt = data.get("receipt")
        return DecisionResult(str(data["result"]), str(data["state"]), Approval.from_json(data["approval"]),
                              Receipt.from_json(receipt) if receipt else None, dict(data))


@dataclass(frozen=True)
class SideEffect:
    """A recorded side effect; ``first_time`` is False when an earlier call stored ``result``."""

    approval_id: str
    action_id: str
    result: Any
    first_time: bool

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "SideEffect":
        return SideEffect(str(data["approvalId"]), str(data["actionId"]), data.get("result"), bool(data["firstTime"]))


@dataclass(frozen=True)
class Case:
    """A compliance case: ``documents_requested`` → ``in_review`` → approved / rejected / escalated, looped."""

    id: str
    tenant: str
    subject: str
    state: str
    iteration: int
    max_iterations: int
    next_deadline: Optional[datetime]
    outcome_reason: Optional[str]
    iterations: List[Dict[str, Any]]
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def wants_documents(self) -> bool:
        return self.state == "documents_requested"

    @property
    def is_closed(self) -> bool:
        return self.state in ("approved", "rejected", "escalated")

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Case":
        return Case(str(data["id"]), str(data["tenant"]), str(data["subject"]), str(data["state"]),
                    int(data.get("iteration") or 0), int(data.get("maxIterations") or 0),
                    parse_time(data.get("nextDeadline")), _str(data, "outcomeReason"),
                    list(data.get("iterations") or []), dict(data))
