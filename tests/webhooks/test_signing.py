"""Signatures, the documented recipe, the retry schedule and the types table: no database."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from billing.webhooks import SignatureError, sign, verify
from billing.webhooks.event_types import PUBLIC_TYPES, check_types, public_type, render_table
from billing.webhooks.payloads import Subject, body, build_object, envelope
from billing.webhooks.retry import GIVE_UP_AFTER, next_attempt

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_test-secret"
BODY = b'{"id":"evt_1","type":"invoice.paid"}'
T = 1_768_478_400


def _between(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"\n<!-- {name}:end -->"
    return text[text.index(start) + len(start):text.index(end)]


def _recipe() -> tuple[Callable[..., int], type[Exception]]:
    """The verification recipe exactly as docs/webhooks.md prints it, executed."""
    code = _between(DOCS.read_text(), "recipe").removeprefix("```python\n").removesuffix("```")
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["verify"], namespace["SignatureError"]


VERIFIERS = [pytest.param((verify, SignatureError), id="billing.webhooks.verify"),
             pytest.param(_recipe(), id="docs-recipe")]


def test_the_header_is_t_and_the_hex_hmac_of_t_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"


@pytest.mark.parametrize("check", VERIFIERS)
def test_a_genuine_signature_verifies_within_the_tolerance(
        check: tuple[Callable[..., int], type[Exception]]) -> None:
    verifier, _ = check
    assert verifier(SECRET, sign(SECRET, T, BODY), BODY, T + 299) == T
    assert verifier(SECRET, sign(SECRET, T, BODY), BODY, T - 299) == T


@pytest.mark.parametrize("check", VERIFIERS)
@pytest.mark.parametrize(("header", "body", "now"), [
    pytest.param(sign(SECRET, T, BODY), BODY.replace(b"paid", b"void"), T, id="tampered-body"),
    pytest.param(sign("whsec_other", T, BODY), BODY, T, id="wrong-secret"),
    pytest.param(sign(SECRET, T, BODY), BODY, T + 301, id="too-old"),
    pytest.param(sign(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}"), BODY, T + 1,
                 id="timestamp-changed"),
    pytest.param(f"t={T}", BODY, T, id="no-signature"),
    pytest.param("garbage", BODY, T, id="malformed"),
])
def test_a_bad_signature_is_refused(check: tuple[Callable[..., int], type[Exception]],
                                    header: str, body: bytes, now: int) -> None:
    verifier, error = check
    with pytest.raises(error):
        verifier(SECRET, header, body, now)


def test_any_of_several_v1_signatures_may_match_during_a_secret_rotation() -> None:
    header = sign("whsec_old", T, BODY) + "," + sign(SECRET, T, BODY).split(",")[1]
    assert verify(SECRET, header, BODY, T) == T
    assert verify("whsec_old", header, BODY, T) == T


def test_retries_follow_the_schedule_then_give_up_three_days_after_the_first_try() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    tries, at, failures = [first], first, 0
    while True:
        failures += 1
        later = next_attempt(first, failures, at)
        if later is None:
            break
        tries.append(later)
        at = later
    gaps = [b - a for a, b in pairwise(tries)]
    assert gaps[:6] == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                        timedelta(hours=2), timedelta(hours=6), timedelta(hours=12)]
    assert set(gaps[5:]) == {timedelta(hours=12)}
    assert tries[-1] <= first + GIVE_UP_AFTER < tries[-1] + timedelta(hours=12)
    assert len(tries) == 11


def test_the_docs_table_is_the_mapping() -> None:
    assert _between(DOCS.read_text(), "webhook-types") == render_table()


def test_status_changes_are_published_by_the_status_they_reach() -> None:
    kind = "subscription.status_changed"
    assert public_type(kind, {"before": "active", "after": "past_due"}) == "subscription.past_due"
    assert public_type(kind, {"before": "active", "after": "canceled"}) == "subscription.canceled"
    assert public_type(kind, {"before": "trialing", "after": "trialing"}) is None
    assert public_type("payment.attempt_started", {}) is None
    assert public_type("payment.declined", {}) == "payment.failed"


def test_an_unknown_event_type_is_named_in_the_error() -> None:
    assert check_types(["invoice.paid", " payment.failed", "invoice.paid"]) == [
        "invoice.paid", "payment.failed"]
    with pytest.raises(ValueError, match=r"'invoice\.payed'"):
        check_types(["invoice.paid", "invoice.payed"])
    assert "refund.succeeded" in PUBLIC_TYPES and "card.expiring" in PUBLIC_TYPES


def test_the_body_is_the_same_bytes_every_time_and_carries_the_event_id() -> None:
    subject = Subject(customer_id=7, customer_external_id="ann", invoice_id=3,
                      invoice_number="INV-3", currency="CAD", invoice_total=4900)
    obj = build_object("invoice.paid", "invoice.paid", subject,
                       {"amount": 4900, "number": "INV-3", "mch_order_no": "x", "worker": "w"})
    stored = envelope("invoice.paid", datetime.fromtimestamp(T, UTC), obj)
    sent = body(42, "k3y", json.loads(json.dumps(stored)))  # as read back from the JSON column
    assert sent == body(42, "k3y", stored)
    assert json.loads(sent) == {
        "id": "evt_42_k3y", "type": "invoice.paid", "created": T,
        "data": {"object": {"object": "invoice", "customer_id": 7, "customer_external_id": "ann",
                            "invoice_id": 3, "invoice_number": "INV-3", "amount": 4900,
                            "currency": "CAD"}}}
