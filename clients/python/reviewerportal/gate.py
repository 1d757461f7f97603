"""``require_approval``: route any tool function, sync or async, through ReviewerPortal.

The call's arguments become the job's payload; the function runs only when the approval is granted, with the
arguments the reviewers approved (the payload the server holds, which the job hash binds). An idempotency key from
the caller (a tool call id) makes a retry after a crash attach to the same approval, and a claim recorded on the
approval before the function starts makes sure it never runs twice for one approval.
"""

from __future__ import annotations

import functools
import inspect
import json
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, Generic, Literal, Optional, TypeVar, Union, cast

from .client import AsyncClient, Client
from .errors import AlreadyStarted, ApprovalRejected, PolicyDenied, WaitTimeout
from .models import Approval, SideEffect

try:  # Python 3.10+
    from typing import ParamSpec
except ImportError:  # pragma: no cover
    from typing_extensions import ParamSpec  # type: ignore[assignment]

P = ParamSpec("P")
R = TypeVar("R")

STARTED = "require_approval:started"
RESULT = "require_approval:result"

OnReject = Literal["raise", "return"]
KeyOf = Callable[[Dict[str, Any]], Optional[str]]


def _arguments(signature: inspect.Signature, args: Any, kwargs: Any) -> Dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    payload: Dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            payload.update(value)
        else:
            payload[name] = value
    json.dumps(payload)  # the payload must be JSON: fail before anything is submitted
    return payload


def _rejected(on_reject: OnReject, state: str, reason: Optional[str], approval_id: Optional[str]) -> str:
    error = ApprovalRejected(state, reason, approval_id)
    if on_reject == "raise":
        raise error
    return str(error)


def _outcome(approval: Approval) -> Optional[ApprovalRejected]:
    if approval.is_approved:
        return None
    reason = approval.changes_reason if approval.is_changes_requested else approval.reason
    return ApprovalRejected(approval.state, reason, approval.id)


def _replay(approval_id: str, stored: SideEffect) -> Any:
    """What an earlier attempt recorded: its return value, or that it never finished."""
    record = stored.result if isinstance(stored.result, dict) else {}
    if record.get("outcome") == "returned" and "value" in record:
        return record["value"]
    raise AlreadyStarted(approval_id)


def _started() -> Dict[str, str]:
    return {"startedAt": datetime.now(timezone.utc).isoformat()}


def _recordable(value: Any) -> Dict[str, Any]:
    try:
        json.dumps(value)
        return {"outcome": "returned", "value": value}
    except (TypeError, ValueError):
        return {"outcome": "returned_unrecordable", "type": type(value).__name__}


class Gated(Generic[P, R]):
    """A function that runs only when approved. Call it like the function (pass ``idempotency_key=`` as an extra
    keyword), or ``gated.with_key(key)(...)`` for a typed call."""

    def __init__(self, func: Callable[P, R], run: Callable[[Optional[str], Any, Any], R]) -> None:
        functools.update_wrapper(self, func)
        self.__wrapped__ = func
        self._run = run

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        key = cast(Optional[str], kwargs.pop("idempotency_key", None))
        return self._run(key, args, kwargs)

    def with_key(self, idempotency_key: Optional[str]) -> Callable[P, R]:
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return self._run(idempotency_key, args, kwargs)
        return call


def require_approval(client: Union[Client, AsyncClient], *, topic: str, env: str = "production",
                     channel: Optional[str] = None, priority: Optional[str] = None, timeout: float = 3600.0,
                     on_reject: OnReject = "raise", key: Optional[KeyOf] = None,
                     verify_receipt: bool = True) -> Callable[[Callable[P, R]], Gated[P, R]]:
    """Decorates a tool function so it runs only when ReviewerPortal approves the call.

    - ``allow``: runs at once. ``deny`` and a reviewer's rejection (also ``expired``, ``withdrawn``,
      ``changes_requested``) raise :class:`~reviewerportal.errors.ApprovalRejected`, or with ``on_reject="return"``
      return its text (``"rejected: <reason>"``) for the model to read.
    - Still pending after ``timeout`` seconds: :class:`~reviewerportal.errors.WaitTimeout`; call again with the same
      idempotency key to go on waiting for the same approval.
    - The idempotency key comes from ``idempotency_key=`` on the call or from ``key(arguments)``. With it, a retry
      (after a crash or a timeout) attaches to the same approval; the function starts at most once per approval and
      a retry after it finished returns the recorded result (:class:`~reviewerportal.errors.AlreadyStarted` when the
      earlier attempt crashed while running).
    - ``verify_receipt``: the approval's signed receipt is checked offline before the function runs.

    Use an :class:`AsyncClient` for ``async def`` functions and a :class:`Client` for plain ones.
    """

    def decorate(func: Callable[P, R]) -> Gated[P, R]:
        signature = inspect.signature(func)
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
            raise TypeError("require_approval needs named parameters (no *args): they become the job's payload")
        if inspect.iscoroutinefunction(func):
            if not isinstance(client, AsyncClient):
                raise TypeError("an async function needs an AsyncClient")
            async_client = client
            async_func = cast(Callable[..., Awaitable[Any]], func)

            async def run_async(idempotency_key: Optional[str], args: Any, kwargs: Any) -> Any:
                arguments = _arguments(signature, args, kwargs)
                idempotency_key = idempotency_key or (key(arguments) if key else None)
                try:
                    submitted = await async_client.submit(topic, env, arguments, channel=channel, priority=priority,
                                                          idempotency_key=idempotency_key)
                except PolicyDenied as denied:
                    return _rejected(on_reject, "denied", denied.detail, None)
                if not submitted.needs_human or submitted.approval_id is None:
                    return await async_func(**arguments)
                approval = await async_client.wait(submitted.approval_id, timeout)
                if approval.is_pending:
                    raise WaitTimeout(approval.id)
                refused = _outcome(approval)
                if refused is not None:
                    return _rejected(on_reject, refused.state, refused.reason, approval.id)
                if verify_receipt:
                    await async_client.verify_receipt(await async_client.get_receipt(approval.id), approval.job_hash)
                claim = await async_client.record_side_effect(approval.id, STARTED, _started(),
                                                              job_hash=approval.job_hash)
                if not claim.first_time:
                    return _replay(approval.id, await async_client.record_side_effect(
                        approval.id, RESULT, {"outcome": "unknown"}, job_hash=approval.job_hash))
                value = await async_func(**dict(approval.payload))
                await async_client.record_side_effect(approval.id, RESULT, _recordable(value),
                                                      job_hash=approval.job_hash)
                return value

            return Gated(func, cast(Callable[[Optional[str], Any, Any], R], run_async))

        if not isinstance(client, Client):
            raise TypeError("a plain function needs a Client (an AsyncClient for async def)")
        sync_client = client

        def run(idempotency_key: Optional[str], args: Any, kwargs: Any) -> Any:
            arguments = _arguments(signature, args, kwargs)
            idempotency_key = idempotency_key or (key(arguments) if key else None)
            try:
                submitted = sync_client.submit(topic, env, arguments, channel=channel, priority=priority,
                                               idempotency_key=idempotency_key)
            except PolicyDenied as denied:
                return _rejected(on_reject, "denied", denied.detail, None)
            if not submitted.needs_human or submitted.approval_id is None:
                return func(**arguments)  # type: ignore[call-arg]
            approval = sync_client.wait(submitted.approval_id, timeout)
            if approval.is_pending:
                raise WaitTimeout(approval.id)
            refused = _outcome(approval)
            if refused is not None:
                return _rejected(on_reject, refused.state, refused.reason, approval.id)
            if verify_receipt:
                sync_client.verify_receipt(sync_client.get_receipt(approval.id), approval.job_hash)
            claim = sync_client.record_side_effect(approval.id, STARTED, _started(), job_hash=approval.job_hash)
            if not claim.first_time:
                return _replay(approval.id, sync_client.record_side_effect(
                    approval.id, RESULT, {"outcome": "unknown"}, job_hash=approval.job_hash))
            value = func(**dict(approval.payload))  # type: ignore[call-arg]
            sync_client.record_side_effect(approval.id, RESULT, _recordable(value), job_hash=approval.job_hash)
            return value

        return Gated(func, cast(Callable[[Optional[str], Any, Any], R], run))

    return decorate
