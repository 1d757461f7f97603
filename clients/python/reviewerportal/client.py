"""Sync :class:`Client` and async :class:`AsyncClient` on httpx: the same calls, one with ``await``."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote

import httpx

from .errors import ReceiptInvalid, Unreachable, error_for
from .models import Approval, Case, DecisionResult, PublicKey, Receipt, ReceiptClaims, SideEffect, SubmitResult
from .receipts import verify_receipt

__version__ = "0.1.0"

# A long-poll asks for at most this many seconds (the server's limit).
MAX_WAIT_SECONDS = 60
# Statuses a wait rides out (a restart, a proxy in between, a store blip), like a dropped connection.
TRANSIENT = {502, 503, 504}


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    params: Optional[Dict[str, Any]] = None
    body: Optional[Dict[str, Any]] = None
    timeout: Optional[float] = None


def _seg(value: str) -> str:
    return quote(value, safe="")


def _drop_none(body: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _answer(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; the typed error of any other."""
    if response.is_success:
        return response.json() if response.content else None
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            problem = {}
    except ValueError:
        problem = {}
    if "detail" not in problem and "title" not in problem:
        problem.setdefault("title", response.reason_phrase or f"HTTP {response.status_code}")
    raise error_for(response.status_code, problem, _retry_after(response))


def _deadline(timeout: Optional[float], deadline: Optional[datetime]) -> float:
    """A monotonic deadline from seconds or an aware datetime (the earlier when both are given)."""
    ends = math.inf
    if timeout is not None:
        ends = time.monotonic() + max(0.0, timeout)
    if deadline is not None:
        if deadline.tzinfo is None:
            raise ValueError("deadline must be timezone-aware")
        ends = min(ends, time.monotonic() + (deadline - datetime.now(timezone.utc)).total_seconds())
    if ends == math.inf:
        raise ValueError("give timeout (seconds) or deadline (an aware datetime)")
    return ends


class _Calls:
    """What each call sends; both clients share it, so they cannot drift apart."""

    @staticmethod
    def submit(topic: str, env: str, payload: Any, channel: Optional[str], priority: Optional[str],
               idempotency_key: Optional[str], requested_by: Optional[str]) -> _Call:
        return _Call("POST", "/api/v1/jobs", body=_drop_none({
            "topic": topic, "env": env, "payload": payload, "channel": channel, "priority": priority,
            "idempotencyKey": idempotency_key, "requestedBy": requested_by}))

    @staticmethod
    def get(approval_id: str) -> _Call:
        return _Call("GET", f"/api/v1/approvals/{_seg(approval_id)}")

    @staticmethod
    def poll(approval_id: str, seconds: int) -> _Call:
        return _Call("GET", f"/api/v1/approvals/{_seg(approval_id)}/decision", params={"waitSeconds": seconds},
                     timeout=seconds + 15.0)

    @staticmethod
    def decide(approval_id: str, verb: str, reason: Optional[str], job_hash: Optional[str],
               policy_snapshot: Optional[str]) -> _Call:
        return _Call("POST", f"/api/v1/approvals/{_seg(approval_id)}/{verb}",
                     body=_drop_none({"reason": reason, "jobHash": job_hash, "policySnapshot": policy_snapshot}))

    @staticmethod
    def request_changes(approval_id: str, reason: str) -> _Call:
        return _Call("POST", f"/api/v1/approvals/{_seg(approval_id)}/request-changes", body={"reason": reason})

    @staticmethod
    def resubmit(approval_id: str, payload: Any, idempotency_key: Optional[str]) -> _Call:
        return _Call("POST", f"/api/v1/approvals/{_seg(approval_id)}/resubmit",
                     body=_drop_none({"payload": payload, "idempotencyKey": idempotency_key}))

    @staticmethod
    def withdraw(approval_id: str, reason: Optional[str]) -> _Call:
        return _Call("POST", f"/api/v1/approvals/{_seg(approval_id)}/withdraw", body=_drop_none({"reason": reason}))

    @staticmethod
    def side_effect(approval_id: str, action_id: str, result: Any, job_hash: Optional[str],
                    policy_snapshot: Optional[str]) -> _Call:
        return _Call("POST", "/api/v1/side-effects", body=_drop_none({
            "approvalId": approval_id, "actionId": action_id, "result": result, "jobHash": job_hash,
            "policySnapshot": policy_snapshot}))

    @staticmethod
    def receipt(approval_id: str) -> _Call:
        return _Call("GET", f"/api/v1/approvals/{_seg(approval_id)}/receipt")

    @staticmethod
    def keys(tenant: str) -> _Call:
        return _Call("GET", f"/api/v1/tenants/{_seg(tenant)}/keys")

    @staticmethod
    def open_case(subject: str, documents: Sequence[str], max_iterations: Optional[int], window: Optional[str],
                  document_deadline: Optional[str], idempotency_key: Optional[str]) -> _Call:
        return _Call("POST", "/api/v1/cases", body=_drop_none({
            "subject": subject, "documents": list(documents), "maxIterations": max_iterations, "window": window,
            "documentDeadline": document_deadline, "idempotencyKey": idempotency_key}))

    @staticmethod
    def case_documents(case_id: str, documents: Mapping[str, Any], note: Optional[str]) -> _Call:
        return _Call("POST", f"/api/v1/cases/{_seg(case_id)}/documents",
                     body=_drop_none({"documents": dict(documents), "note": note}))

    @staticmethod
    def decide_case(case_id: str, decision: str, reason: Optional[str], documents: Optional[Sequence[str]]) -> _Call:
        return _Call("POST", f"/api/v1/cases/{_seg(case_id)}/decision", body=_drop_none({
            "decision": decision, "reason": reason, "documents": list(documents) if documents is not None else None}))

    @staticmethod
    def get_case(case_id: str) -> _Call:
        return _Call("GET", f"/api/v1/cases/{_seg(case_id)}")

    @staticmethod
    def job(job_id: str) -> _Call:
        return _Call("GET", f"/api/v1/jobs/{_seg(job_id)}")

    @staticmethod
    def job_result(job_id: str, status: str, detail: Optional[str]) -> _Call:
        return _Call("POST", f"/api/v1/jobs/{_seg(job_id)}/result", body=_drop_none({"status": status, "detail": detail}))


def _case(data: Mapping[str, Any]) -> Case:
    return Case.from_json(data["case"] if "case" in data and isinstance(data["case"], dict) else data)


def _receipt_tenant(receipt: Receipt) -> str:
    """The tenant named in the (not yet verified) payload, to know whose keys to fetch."""
    try:
        return str(json.loads(receipt.payload)["tenant"])
    except (ValueError, KeyError, TypeError) as error:
        raise ReceiptInvalid("malformed payload") from error


class _Base:
    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": f"reviewerportal-python/{__version__}",
                         "Accept": "application/json"}
        self._keys: Dict[str, List[PublicKey]] = {}


class Client(_Base):
    """A blocking client. ``token`` is an agent key or a person's API token.

    >>> with Client("http://localhost:5080", "demo-acme-agent") as rp:
    ...     job = rp.submit("finance.payment.execute", "production", {"invoice": "INV-7", "amount": 420})
    ...     approval = rp.wait(job.approval_id, timeout=3600)
    """

    def __init__(self, base_url: str, token: str, *, http: Optional[httpx.Client] = None, timeout: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(base_url, token)
        self._owns = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._sleep = sleep

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns:
            self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        kwargs: Dict[str, Any] = {"params": call.params, "headers": self._headers}
        if call.body is not None:
            kwargs["json"] = call.body
        if call.timeout is not None:
            kwargs["timeout"] = call.timeout
        return self._http.request(call.method, self.base_url + call.path, **kwargs)

    def _do(self, call: _Call) -> Any:
        return _answer(self._send(call))

    # Agents -------------------------------------------------------------------------------------------------
    def submit(self, topic: str, env: str, payload: Any, *, channel: Optional[str] = None,
               priority: Optional[str] = None, idempotency_key: Optional[str] = None,
               requested_by: Optional[str] = None) -> SubmitResult:
        """Submits a job. ``allow`` and ``require_human`` come back as a result; deny raises
        :class:`~reviewerportal.errors.PolicyDenied`, throttle :class:`~reviewerportal.errors.PolicyThrottled`.
        With the same ``idempotency_key`` a retry answers the first submission (``replayed``)."""
        return SubmitResult.from_json(self._do(_Calls.submit(topic, env, payload, channel, priority, idempotency_key,
                                                             requested_by)))

    def get(self, approval_id: str) -> Approval:
        return Approval.from_json(self._do(_Calls.get(approval_id)))

    def wait(self, approval_id: str, timeout: Optional[float] = None, *,
             deadline: Optional[datetime] = None) -> Approval:
        """Waits until the approval leaves ``pending`` or the deadline passes, and returns it as it then is.

        Long-polls in steps of at most 60 s; a dropped connection, a server restart or a 502/503/504/429 is ridden
        out with backoff until the deadline, so no decision is missed. Raises
        :class:`~reviewerportal.errors.Unreachable` when the server never answered before the deadline."""
        ends = _deadline(timeout, deadline)
        delay = 0.2
        last: Optional[Approval] = None
        failure: Optional[BaseException] = None
        while True:
            left = ends - time.monotonic()
            seconds = int(min(MAX_WAIT_SECONDS, max(0, math.ceil(left))))
            pause: Optional[float] = None
            try:
                response = self._send(_Calls.poll(approval_id, seconds))
                if response.status_code in TRANSIENT or response.status_code == 429:
                    failure = error_for(response.status_code, _problem(response), _retry_after(response))
                    pause = _retry_after(response)
                else:
                    last = Approval.from_json(_answer(response))
                    failure, delay = None, 0.2
                    if not last.is_pending or seconds == 0 or time.monotonic() >= ends:
                        return last
                    continue
            except httpx.TransportError as error:
                failure = error
            left = ends - time.monotonic()
            if left <= 0:
                if last is not None:
                    return last
                raise Unreachable(f"no answer for {approval_id} before the deadline: {failure}") from failure
            self._sleep(min(pause if pause is not None else delay, left))
            delay = min(delay * 2, 5.0)

    def resubmit(self, approval_id: str, payload: Any, idempotency_key: Optional[str] = None) -> DecisionResult:
        """After changes were requested: the amended payload as a new version (same key: ``already_resubmitted``)."""
        return DecisionResult.from_json(self._do(_Calls.resubmit(approval_id, payload, idempotency_key)))

    def withdraw(self, approval_id: str, reason: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(self._do(_Calls.withdraw(approval_id, reason)))

    def record_side_effect(self, approval_id: str, action_id: str, result: Any, *, job_hash: Optional[str] = None,
                           policy_snapshot: Optional[str] = None) -> SideEffect:
        """Stores ``result`` once per (approval, action); every later call returns the first result."""
        return SideEffect.from_json(self._do(_Calls.side_effect(approval_id, action_id, result, job_hash,
                                                                policy_snapshot)))

    def get_job(self, job_id: str) -> Dict[str, Any]:
        return dict(self._do(_Calls.job(job_id)))

    def report_result(self, job_id: str, status: str, detail: Optional[str] = None) -> Dict[str, Any]:
        """``completed`` or ``failed``: stops the replay of a dispatched job."""
        return dict(self._do(_Calls.job_result(job_id, status, detail)))

    # Reviewers ----------------------------------------------------------------------------------------------
    def approve(self, approval_id: str, reason: Optional[str] = None, *, job_hash: Optional[str] = None,
                policy_snapshot: Optional[str] = None) -> DecisionResult:
        """Idempotent: a second call answers ``already_approved``. A stale hash or snapshot raises
        :class:`~reviewerportal.errors.JobChanged` / :class:`~reviewerportal.errors.SnapshotChanged`."""
        return DecisionResult.from_json(self._do(_Calls.decide(approval_id, "approve", reason, job_hash,
                                                               policy_snapshot)))

    def reject(self, approval_id: str, reason: Optional[str] = None, *, job_hash: Optional[str] = None,
               policy_snapshot: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(self._do(_Calls.decide(approval_id, "reject", reason, job_hash,
                                                               policy_snapshot)))

    def request_changes(self, approval_id: str, reason: str) -> DecisionResult:
        return DecisionResult.from_json(self._do(_Calls.request_changes(approval_id, reason)))

    # Cases --------------------------------------------------------------------------------------------------
    def open_case(self, subject: str, documents: Sequence[str], *, max_iterations: Optional[int] = None,
                  window: Optional[str] = None, document_deadline: Optional[str] = None,
                  idempotency_key: Optional[str] = None) -> Case:
        """Opens a compliance case asking for ``documents``; ``window`` and ``document_deadline`` are ISO 8601
        durations (``P60D``)."""
        return _case(self._do(_Calls.open_case(subject, documents, max_iterations, window, document_deadline,
                                               idempotency_key)))

    def submit_documents(self, case_id: str, documents: Mapping[str, Any], note: Optional[str] = None) -> Case:
        return _case(self._do(_Calls.case_documents(case_id, documents, note)))

    def decide_case(self, case_id: str, decision: str, reason: Optional[str] = None,
                    documents: Optional[Sequence[str]] = None) -> Case:
        """``approve``, ``reject``, ``escalate`` or ``request_documents`` (with ``documents``)."""
        return _case(self._do(_Calls.decide_case(case_id, decision, reason, documents)))

    def get_case(self, case_id: str) -> Case:
        return _case(self._do(_Calls.get_case(case_id)))

    # Receipts -----------------------------------------------------------------------------------------------
    def get_receipt(self, approval_id: str) -> Receipt:
        """The signed receipt of a decided approval (:class:`~reviewerportal.errors.ReceiptPending` while pending)."""
        return Receipt.from_json(self._do(_Calls.receipt(approval_id)))

    def public_keys(self, tenant: str, *, refresh: bool = False) -> List[PublicKey]:
        """The tenant's receipt-signing keys, cached; ``refresh`` fetches them again."""
        if refresh or tenant not in self._keys:
            self._keys[tenant] = [PublicKey.from_json(k) for k in self._do(_Calls.keys(tenant))["keys"]]
        return self._keys[tenant]

    def verify_receipt(self, receipt: Receipt, job_hash: str, now: Optional[datetime] = None) -> ReceiptClaims:
        """Verifies offline with the cached keys (fetched again once when the receipt names a key not seen yet)."""
        tenant = _receipt_tenant(receipt)
        keys = self.public_keys(tenant)
        if all(k.kid != receipt.kid for k in keys):
            keys = self.public_keys(tenant, refresh=True)
        return verify_receipt(receipt, keys, job_hash, now)


class AsyncClient(_Base):
    """The same calls as :class:`Client`, awaitable."""

    def __init__(self, base_url: str, token: str, *, http: Optional[httpx.AsyncClient] = None, timeout: float = 30.0,
                 sleep: Optional[Callable[[float], Any]] = None) -> None:
        super().__init__(base_url, token)
        self._owns = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._sleep = sleep or asyncio.sleep

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns:
            await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        kwargs: Dict[str, Any] = {"params": call.params, "headers": self._headers}
        if call.body is not None:
            kwargs["json"] = call.body
        if call.timeout is not None:
            kwargs["timeout"] = call.timeout
        return await self._http.request(call.method, self.base_url + call.path, **kwargs)

    async def _do(self, call: _Call) -> Any:
        return _answer(await self._send(call))

    async def submit(self, topic: str, env: str, payload: Any, *, channel: Optional[str] = None,
                     priority: Optional[str] = None, idempotency_key: Optional[str] = None,
                     requested_by: Optional[str] = None) -> SubmitResult:
        return SubmitResult.from_json(await self._do(_Calls.submit(topic, env, payload, channel, priority,
                                                                   idempotency_key, requested_by)))

    async def get(self, approval_id: str) -> Approval:
        return Approval.from_json(await self._do(_Calls.get(approval_id)))

    async def wait(self, approval_id: str, timeout: Optional[float] = None, *,
                   deadline: Optional[datetime] = None) -> Approval:
        """See :meth:`Client.wait`."""
        ends = _deadline(timeout, deadline)
        delay = 0.2
        last: Optional[Approval] = None
        failure: Optional[BaseException] = None
        while True:
            left = ends - time.monotonic()
            seconds = int(min(MAX_WAIT_SECONDS, max(0, math.ceil(left))))
            pause: Optional[float] = None
            try:
                response = await self._send(_Calls.poll(approval_id, seconds))
                if response.status_code in TRANSIENT or response.status_code == 429:
                    failure = error_for(response.status_code, _problem(response), _retry_after(response))
                    pause = _retry_after(response)
                else:
                    last = Approval.from_json(_answer(response))
                    failure, delay = None, 0.2
                    if not last.is_pending or seconds == 0 or time.monotonic() >= ends:
                        return last
                    continue
            except httpx.TransportError as error:
                failure = error
            left = ends - time.monotonic()
            if left <= 0:
                if last is not None:
                    return last
                raise Unreachable(f"no answer for {approval_id} before the deadline: {failure}") from failure
            await self._sleep(min(pause if pause is not None else delay, left))
            delay = min(delay * 2, 5.0)

    async def resubmit(self, approval_id: str, payload: Any, idempotency_key: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(await self._do(_Calls.resubmit(approval_id, payload, idempotency_key)))

    async def withdraw(self, approval_id: str, reason: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(await self._do(_Calls.withdraw(approval_id, reason)))

    async def record_side_effect(self, approval_id: str, action_id: str, result: Any, *,
                                 job_hash: Optional[str] = None, policy_snapshot: Optional[str] = None) -> SideEffect:
        return SideEffect.from_json(await self._do(_Calls.side_effect(approval_id, action_id, result, job_hash,
                                                                      policy_snapshot)))

    async def get_job(self, job_id: str) -> Dict[str, Any]:
        return dict(await self._do(_Calls.job(job_id)))

    async def report_result(self, job_id: str, status: str, detail: Optional[str] = None) -> Dict[str, Any]:
        return dict(await self._do(_Calls.job_result(job_id, status, detail)))

    async def approve(self, approval_id: str, reason: Optional[str] = None, *, job_hash: Optional[str] = None,
                      policy_snapshot: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(await self._do(_Calls.decide(approval_id, "approve", reason, job_hash,
                                                                     policy_snapshot)))

    async def reject(self, approval_id: str, reason: Optional[str] = None, *, job_hash: Optional[str] = None,
                     policy_snapshot: Optional[str] = None) -> DecisionResult:
        return DecisionResult.from_json(await self._do(_Calls.decide(approval_id, "reject", reason, job_hash,
                                                                     policy_snapshot)))

    async def request_changes(self, approval_id: str, reason: str) -> DecisionResult:
        return DecisionResult.from_json(await self._do(_Calls.request_changes(approval_id, reason)))

    async def open_case(self, subject: str, documents: Sequence[str], *, max_iterations: Optional[int] = None,
                        window: Optional[str] = None, document_deadline: Optional[str] = None,
                        idempotency_key: Optional[str] = None) -> Case:
        return _case(await self._do(_Calls.open_case(subject, documents, max_iterations, window, document_deadline,
                                                     idempotency_key)))

    async def submit_documents(self, case_id: str, documents: Mapping[str, Any], note: Optional[str] = None) -> Case:
        return _case(await self._do(_Calls.case_documents(case_id, documents, note)))

    async def decide_case(self, case_id: str, decision: str, reason: Optional[str] = None,
                          documents: Optional[Sequence[str]] = None) -> Case:
        return _case(await self._do(_Calls.decide_case(case_id, decision, reason, documents)))

    async def get_case(self, case_id: str) -> Case:
        return _case(await self._do(_Calls.get_case(case_id)))

    async def get_receipt(self, approval_id: str) -> Receipt:
        return Receipt.from_json(await self._do(_Calls.receipt(approval_id)))

    async def public_keys(self, tenant: str, *, refresh: bool = False) -> List[PublicKey]:
        if refresh or tenant not in self._keys:
            self._keys[tenant] = [PublicKey.from_json(k) for k in (await self._do(_Calls.keys(tenant)))["keys"]]
        return self._keys[tenant]

    async def verify_receipt(self, receipt: Receipt, job_hash: str, now: Optional[datetime] = None) -> ReceiptClaims:
        tenant = _receipt_tenant(receipt)
        keys = await self.public_keys(tenant)
        if all(k.kid != receipt.kid for k in keys):
            keys = await self.public_keys(tenant, refresh=True)
        return verify_receipt(receipt, keys, job_hash, now)


def _problem(response: httpx.Response) -> Dict[str, Any]:
    try:
        data = response.json()
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {"title": response.reason_phrase}


AnyClient = Union[Client, AsyncClient]
