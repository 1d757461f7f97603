"""Offline receipt verification: ECDSA P-256 / SHA-256 over the UTF-8 payload, IEEE P1363 signature, base64url.

An executor proves it holds a real approval for this exact job with the tenant's public keys only
(``GET /api/v1/tenants/{tenant}/keys``, no credentials needed)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Iterable, Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

from .errors import ReceiptInvalid
from .models import PublicKey, Receipt, ReceiptClaims, parse_time


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_receipt(receipt: Receipt, keys: Iterable[PublicKey], job_hash: str,
                   now: Optional[datetime] = None) -> ReceiptClaims:
    """The receipt's claims when its signature is valid, it is current, it approves and it names ``job_hash``;
    raises :class:`~reviewerportal.errors.ReceiptInvalid` with the reason otherwise."""
    key = next((k for k in keys if k.kid == receipt.kid), None)
    if key is None:
        raise ReceiptInvalid("unknown key")
    try:
        public = load_der_public_key(base64.b64decode(key.public_key))
    except (ValueError, binascii.Error) as error:
        raise ReceiptInvalid("malformed key") from error
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise ReceiptInvalid("not a P-256 key")
    try:
        raw = _b64url(receipt.signature)
    except (ValueError, binascii.Error) as error:
        raise ReceiptInvalid("malformed signature") from error
    if len(raw) != 64:
        raise ReceiptInvalid("malformed signature")
    # IEEE P1363 (r || s, 32 bytes each) to the DER form cryptography verifies.
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, receipt.payload.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as error:
        raise ReceiptInvalid("bad signature") from error
    try:
        data = json.loads(receipt.payload)
        claims = ReceiptClaims(
            approval_id=str(data["approvalId"]), tenant=str(data["tenant"]), job_id=str(data["jobId"]),
            job_hash=str(data["jobHash"]), policy_snapshot=str(data["policySnapshot"]),
            decision=str(data["decision"]), deciders=[str(d) for d in data.get("deciders") or []],
            decided_at=_time(data["decidedAt"]), issued_at=_time(data["issuedAt"]),
            expires_at=_time(data["expiresAt"]), kid=str(data["kid"]))
    except (ValueError, KeyError, TypeError) as error:
        raise ReceiptInvalid("malformed payload") from error
    if claims.kid != receipt.kid:
        raise ReceiptInvalid("malformed payload")
    if (now or datetime.now(timezone.utc)) > claims.expires_at:
        raise ReceiptInvalid("expired")
    if claims.decision != "approved":
        raise ReceiptInvalid(f"decision is {claims.decision}")
    if claims.job_hash != job_hash:
        raise ReceiptInvalid("a different job")
    return claims


def _time(value: object) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError("missing time")
    return parsed
