"""The sync and async clients against the real app: submit, wait, decide, typed errors, receipts, restarts."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
import pytest

from reviewerportal import (AsyncClient, Client, Forbidden, IdempotencyKeyReused, InvalidRequest, JobChanged,
                            NotAnApprover, NotFound, PolicyDenied, PolicyThrottled, ReceiptInvalid, ReceiptPending,
                            SnapshotChanged, Unauthorized, Unreachable)
from support import App, in_thread, unique

PAY = "finance.payment.execute"


def agent(app: App) -> Client:
    return Client(app.url, "demo-acme-agent")


def alice(app: App) -> Client:
    return Client(app.url, "demo-alice-token")


def test_submit_wait_approve_and_verify_the_receipt_offline(app: App) -> None:
    with agent(app) as rp, alice(app) as reviewer:
        job = rp.submit(PAY, "production", {"invoice": "INV-1", "amount": 420}, priority="high",
                        idempotency_key=unique("pay"))
        assert job.needs_human and job.approval_id and job.rule_id == "require-approval-prod-finance"
        waiting = in_thread(lambda: rp.wait(job.approval_id or "", timeout=60))
        time.sleep(0.5)
        decided = reviewer.approve(job.approval_id, "validated", job_hash=job.job_hash,
                                   policy_snapshot=job.policy_snapshot)
        assert decided.result == "approved" and decided.receipt is not None
        approval = waiting.get()
        assert approval.is_approved and approval.decided_by == "alice" and approval.payload["amount"] == 420

        receipt = rp.get_receipt(job.approval_id or "")
        claims = rp.verify_receipt(receipt, job.job_hash)
        assert claims.approval_id == job.approval_id and claims.decision == "approved" and claims.deciders == ["alice"]
        # The same check fails for another job, a changed payload or a forged signature.
        with pytest.raises(ReceiptInvalid, match="a different job"):
            rp.verify_receipt(receipt, "0" * 64)
        forged = dataclasses.replace(receipt, payload=receipt.payload.replace('"approved"', '"approved" '))
        with pytest.raises(ReceiptInvalid, match="bad signature"):
            rp.verify_receipt(forged, job.job_hash)
        flipped = dataclasses.replace(receipt, signature=("A" if receipt.signature[0] != "A" else "B") + receipt.signature[1:])
        with pytest.raises(ReceiptInvalid, match="bad signature"):
            rp.verify_receipt(flipped, job.job_hash)


def test_a_rejected_receipt_does_not_verify(app: App) -> None:
    with agent(app) as rp, alice(app) as reviewer:
        job = rp.submit(PAY, "production", {"invoice": "INV-2", "amount": 1})
        with pytest.raises(ReceiptPending):
            rp.get_receipt(job.approval_id or "")
        reviewer.reject(job.approval_id or "", "no")
        approval = rp.wait(job.approval_id or "", timeout=30)
        assert approval.state == "rejected" and approval.reason == "no"
        with pytest.raises(ReceiptInvalid, match="decision is rejected"):
            rp.verify_receipt(rp.get_receipt(approval.id), approval.job_hash)


def test_every_error_is_a_typed_exception_with_its_code(app: App) -> None:
    with agent(app) as rp, alice(app) as reviewer, Client(app.url, "demo-gina-token") as gina:
        key = unique("k")
        job = rp.submit(PAY, "production", {"invoice": "INV-3", "amount": 5}, idempotency_key=key)
        with pytest.raises(JobChanged) as changed:
            reviewer.approve(job.approval_id or "", job_hash="f" * 64)
        assert changed.value.status == 409 and changed.value.code == "job_changed"
        with pytest.raises(SnapshotChanged):
            reviewer.approve(job.approval_id or "", policy_snapshot="0" * 64)
        with pytest.raises(Forbidden):
            rp.approve(job.approval_id or "")  # an agent key decides nothing
        with pytest.raises(NotFound) as missing:
            gina.approve(job.approval_id or "")  # another tenant's approval is a 404
        assert missing.value.code == "not_found"
        with pytest.raises(NotFound):
            rp.get("apr_does_not_exist")
        with pytest.raises(InvalidRequest) as invalid:
            rp.submit("", "production", {})
        assert "topic" in invalid.value.errors
        with pytest.raises(IdempotencyKeyReused):
            rp.submit(PAY, "production", {"invoice": "INV-3", "amount": 6}, idempotency_key=key)
        with pytest.raises(PolicyDenied) as denied:
            rp.submit("secrets.export", "production", {"name": "db"})
        assert denied.value.rule_id == "deny-secrets-export"
        with pytest.raises(PolicyThrottled) as throttled:
            for _ in range(20):
                rp.submit("email.bulk_send", "production", {"n": unique("mail")})
        assert throttled.value.retry_after is not None
        with Client(app.url, "not-a-key") as stranger, pytest.raises(Unauthorized):
            stranger.get(job.approval_id or "")


def test_not_an_approver_is_typed(app: App) -> None:
    with agent(app) as rp, Client(app.url, "demo-carol-token") as carol:
        job = rp.submit(PAY, "production", {"invoice": "INV-4", "amount": 5})
        with pytest.raises((NotAnApprover, NotFound)) as refused:
            carol.approve(job.approval_id or "")
        assert refused.value.code in ("not_an_approver", "not_found")


def test_idempotency_key_attaches_a_retry_to_the_same_approval(app: App) -> None:
    with agent(app) as rp:
        key = unique("retry")
        first = rp.submit(PAY, "production", {"invoice": "INV-5", "amount": 9}, idempotency_key=key)
        again = rp.submit(PAY, "production", {"invoice": "INV-5", "amount": 9}, idempotency_key=key)
        assert again.approval_id == first.approval_id and again.replayed


def test_wait_returns_the_pending_approval_at_the_deadline(app: App) -> None:
    with agent(app) as rp:
        job = rp.submit(PAY, "production", {"invoice": "INV-6", "amount": 9})
        approval = rp.wait(job.approval_id or "", timeout=1.5)
        assert approval.is_pending


def test_wait_resumes_across_a_server_restart(app: App) -> None:
    with agent(app) as rp:
        job = rp.submit(PAY, "production", {"invoice": "INV-7", "amount": 420}, idempotency_key=unique("restart"))
        waiting = in_thread(lambda: rp.wait(job.approval_id or "", timeout=240))
        time.sleep(1.0)
        app.stop(crash=True)  # killed: the long-poll's connection drops; the server is gone for a while
        time.sleep(2.0)
        assert waiting.thread.is_alive()
        app.start()
        with alice(app) as reviewer:
            reviewer.approve(job.approval_id or "", "after the restart")
        approval = waiting.get(timeout=120)
        assert approval.is_approved and approval.reason == "after the restart"


def test_wait_with_no_server_until_the_deadline_raises_unreachable() -> None:
    with Client("http://127.0.0.1:9", "demo-acme-agent") as rp, pytest.raises(Unreachable):
        rp.wait("apr_x", timeout=1)


def test_async_client_does_the_same(app: App) -> None:
    async def scenario() -> None:
        async with AsyncClient(app.url, "demo-acme-agent") as rp, AsyncClient(app.url, "demo-alice-token") as reviewer:
            job = await rp.submit(PAY, "production", {"invoice": "INV-8", "amount": 3})
            waiting = asyncio.ensure_future(rp.wait(job.approval_id or "", timeout=60))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await reviewer.approve(job.approval_id or "", "fine")
            approval = await waiting
            assert approval.is_approved
            claims = await rp.verify_receipt(await rp.get_receipt(approval.id), approval.job_hash)
            assert claims.job_id == job.job_id
            other = await rp.submit(PAY, "production", {"invoice": "INV-8b", "amount": 3})
            with pytest.raises(JobChanged):
                await reviewer.approve(other.approval_id or "", job_hash="0" * 64)
    asyncio.run(scenario())


def test_changes_requested_then_resubmit_and_withdraw(app: App) -> None:
    with agent(app) as rp, alice(app) as reviewer:
        job = rp.submit(PAY, "production", {"invoice": "INV-9", "amount": 900})
        reviewer.request_changes(job.approval_id or "", "attach the purchase order")
        approval = rp.wait(job.approval_id or "", timeout=30)
        assert approval.is_changes_requested and approval.changes_reason == "attach the purchase order"
        resubmitted = rp.resubmit(approval.id, {"invoice": "INV-9", "amount": 900, "po": "PO-1"}, unique("v2"))
        assert resubmitted.result == "resubmitted" and resubmitted.approval.version == 2
        withdrawn = rp.withdraw(approval.id, "not needed")
        assert withdrawn.state == "withdrawn"


def test_cases_open_documents_and_decision(app: App) -> None:
    with agent(app) as rp, alice(app) as reviewer:
        case = rp.open_case("Onboarding Initech", ["passport"], idempotency_key=unique("kyc"))
        assert case.wants_documents
        case = rp.submit_documents(case.id, {"passport": "s3://kyc/p.pdf"})
        assert case.state == "in_review"
        case = reviewer.decide_case(case.id, "approve", "complete")
        assert case.is_closed and rp.get_case(case.id).state == "approved"


def test_the_client_sends_json_to_the_api(app: App) -> None:
    # The raw API agrees with the client about the submit's shape (a guard against field-name drift).
    response = httpx.post(app.url + "/api/v1/jobs", headers={"Authorization": "Bearer demo-acme-agent"},
                          json={"topic": "knowledge.read", "env": "production", "payload": {"q": "x"}})
    assert response.status_code == 200
    with agent(app) as rp:
        allowed = rp.submit("knowledge.read", "production", {"q": "x"})
        assert allowed.allowed and allowed.approval_id is None and set(response.json()) <= set(allowed.raw) | {"ruleId"}
