"""require_approval against the real app: runs only when approved, with the approved arguments, never twice."""

from __future__ import annotations

import asyncio
from typing import Dict, List

import pytest

from reviewerportal import AlreadyStarted, ApprovalRejected, AsyncClient, Client, WaitTimeout, require_approval
from support import App, in_thread, pending_with_key, unique

PAY = "finance.payment.execute"


class Crash(BaseException):
    """The process dying half-way (not an Exception: nothing catches it)."""


def test_runs_once_when_approved_with_the_approved_arguments(app: App) -> None:
    calls: List[Dict[str, object]] = []
    with Client(app.url, "demo-acme-agent") as rp, Client(app.url, "demo-alice-token") as reviewer:
        @require_approval(rp, topic=PAY, env="production", timeout=60)
        def pay(invoice: str, amount: int, note: str = "") -> str:
            calls.append({"invoice": invoice, "amount": amount, "note": note})
            return f"paid {invoice}"

        key = unique("call")
        running = in_thread(lambda: pay("INV-1", 420, idempotency_key=key))
        approval_id = pending_with_key(app, key)
        assert calls == []  # nothing runs while the approval is pending
        reviewer.approve(approval_id, "ok")
        assert running.get() == "paid INV-1"
        assert calls == [{"invoice": "INV-1", "amount": 420, "note": ""}]

        # A retry with the same tool call id (the agent restarted) attaches to the same approval and returns the
        # recorded result without running the function again.
        assert pay("INV-1", 420, idempotency_key=key) == "paid INV-1"
        assert pay.with_key(key)("INV-1", 420) == "paid INV-1"
        assert len(calls) == 1


def test_a_crash_while_running_is_never_followed_by_a_second_run(app: App) -> None:
    calls: List[str] = []
    with Client(app.url, "demo-acme-agent") as rp, Client(app.url, "demo-alice-token") as reviewer:
        @require_approval(rp, topic=PAY, timeout=60, key=lambda args: f"crash-{args['invoice']}")
        def pay(invoice: str) -> str:
            calls.append(invoice)
            raise Crash()  # the process dies half-way through the side effect

        invoice = unique("INV")
        reviewer_done = in_thread(lambda: reviewer.approve(pending_with_key(app, f"crash-{invoice}"), "ok"))
        with pytest.raises(Crash):
            pay(invoice)
        reviewer_done.get()
        with pytest.raises(AlreadyStarted):
            pay(invoice)
        assert calls == [invoice]


def test_rejection_raises_or_returns_the_reason(app: App) -> None:
    calls: List[str] = []
    with Client(app.url, "demo-acme-agent") as rp, Client(app.url, "demo-alice-token") as reviewer:
        @require_approval(rp, topic=PAY, timeout=60)
        def pay(invoice: str) -> str:
            calls.append(invoice)
            return "paid"

        @require_approval(rp, topic=PAY, timeout=60, on_reject="return")
        def pay_softly(invoice: str) -> str:
            calls.append(invoice)
            return "paid"

        key = unique("rej")
        running = in_thread(lambda: pay("INV-R", idempotency_key=key))
        reviewer.reject(pending_with_key(app, key), "wrong vendor")
        with pytest.raises(ApprovalRejected) as rejected:
            running.get()
        assert rejected.value.state == "rejected" and rejected.value.reason == "wrong vendor"

        key = unique("rej")
        running = in_thread(lambda: pay_softly("INV-S", idempotency_key=key))
        reviewer.reject(pending_with_key(app, key), "duplicate invoice")
        assert running.get() == "rejected: duplicate invoice"
        assert calls == []


def test_denied_by_policy_never_runs_and_allowed_runs_at_once(app: App) -> None:
    calls: List[str] = []
    with Client(app.url, "demo-acme-agent") as rp:
        @require_approval(rp, topic="secrets.export", on_reject="return")
        def export(name: str) -> str:
            calls.append(name)
            return "exported"

        @require_approval(rp, topic="knowledge.read")
        def read(query: str) -> str:
            calls.append(query)
            return "answer"

        assert export("db").startswith("denied:")
        assert read("q") == "answer"
        assert calls == ["q"]


def test_still_pending_at_the_deadline_raises_and_a_retry_keeps_waiting_for_the_same_approval(app: App) -> None:
    with Client(app.url, "demo-acme-agent") as rp, Client(app.url, "demo-alice-token") as reviewer:
        @require_approval(rp, topic=PAY, timeout=1)
        def pay(invoice: str) -> str:
            return f"paid {invoice}"

        key = unique("slow")
        with pytest.raises(WaitTimeout) as timed_out:
            pay("INV-T", idempotency_key=key)
        reviewer.approve(timed_out.value.approval_id, "later")
        assert pay("INV-T", idempotency_key=key) == "paid INV-T"


def test_async_functions_are_gated_the_same_way(app: App) -> None:
    calls: List[int] = []

    async def scenario() -> None:
        async with AsyncClient(app.url, "demo-acme-agent") as rp, \
                AsyncClient(app.url, "demo-alice-token") as reviewer:
            @require_approval(rp, topic=PAY, timeout=60)
            async def pay(invoice: str, amount: int) -> str:
                calls.append(amount)
                return f"paid {amount}"

            key = unique("async")
            running = asyncio.ensure_future(pay("INV-A", 7, idempotency_key=key))
            approval_id = await asyncio.to_thread(pending_with_key, app, key)
            await reviewer.approve(approval_id, "ok")
            assert await running == "paid 7"
            assert await pay("INV-A", 7, idempotency_key=key) == "paid 7"

    asyncio.run(scenario())
    assert calls == [7]


def test_a_plain_function_needs_a_sync_client_and_named_parameters(app: App) -> None:
    async_client = AsyncClient(app.url, "demo-acme-agent")
    with pytest.raises(TypeError):
        require_approval(async_client, topic=PAY)(lambda invoice: invoice)
    with Client(app.url, "demo-acme-agent") as rp, pytest.raises(TypeError):
        def spread(*invoices: str) -> None: ...
        require_approval(rp, topic=PAY)(spread)
    asyncio.run(async_client.aclose())
