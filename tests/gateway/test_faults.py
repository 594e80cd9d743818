"""Each fault switch, and how the client classifies what it sees.

The property under test is the one the engine relies on: whatever the fault, the client reports
``GatewayOutcomeUnknown`` unless it *knows*, never re-sends a charge by itself, and ``cc_query``
then tells the truth from the ledger (charged once, or no such order).
"""

from __future__ import annotations

import time

import pytest

from billing.gateway import GatewayOutcomeUnknown, IotpayClient, QueryRetry
from billing.sandbox import SandboxServer
from billing.sandbox.testing import add_card, running_sandbox
from tests.gateway.conftest import FAST_QUERY_RETRY, Charge

TOKEN = "cc_purchasewithtoken"


def test_drop_after_charge_is_unknown_charged_once_and_found_by_query(
    sandbox: SandboxServer, client: IotpayClient, charge: Charge, card: str
) -> None:
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=(TOKEN,))
    with pytest.raises(GatewayOutcomeUnknown, match="RemoteDisconnected"):
        charge("o-1", card)
    assert sandbox.ledger().charges("o-1") == 1
    assert sandbox.request_count(TOKEN, "o-1") == 1  # the client did not re-send
    found = client.cc_query(mch_order_no="o-1")
    assert found.ok and found.data is not None and found.data.paid


def test_500_before_processing_is_unknown_and_query_finds_no_order(
    sandbox: SandboxServer, client: IotpayClient, charge: Charge, card: str
) -> None:
    sandbox.set_faults(error_500_rate=1.0, endpoints=(TOKEN,))
    with pytest.raises(GatewayOutcomeUnknown, match="HTTP 500") as err:
        charge("o-1", card)
    assert err.value.http_status == 500
    assert sandbox.request_count(TOKEN, "o-1") == 1
    assert sandbox.ledger().order("o-1") is None
    assert client.cc_query(mch_order_no="o-1").order_not_found


def test_502_after_charge_is_unknown_and_charged_once(
    sandbox: SandboxServer, client: IotpayClient, charge: Charge, card: str
) -> None:
    sandbox.set_faults(error_502_after_charge_rate=1.0, endpoints=(TOKEN,))
    with pytest.raises(GatewayOutcomeUnknown, match="HTTP 502"):
        charge("o-1", card)
    assert sandbox.ledger().charges("o-1") == 1 and sandbox.request_count(TOKEN) == 1
    assert client.cc_query(mch_order_no="o-1").data.paid  # type: ignore[union-attr]


def test_latency_beyond_the_read_timeout_is_unknown_and_the_charge_lands_later(
    sandbox: SandboxServer, client: IotpayClient, card: str
) -> None:
    sandbox.set_faults(latency_ms=300, endpoints=(TOKEN,))
    with sandbox.client(timeout=(1.0, 0.05)) as impatient, pytest.raises(
        GatewayOutcomeUnknown, match="ReadTimeout"
    ):
        impatient.cc_purchasewithtoken(mch_order_no="o-1", mch_user_id="u", card_id=card,
                                       amount=100, notify_url="http://127.0.0.1:9/n")  # fmt: skip
    deadline = time.monotonic() + 3
    while sandbox.ledger().charges("o-1") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.ledger().charges("o-1") == 1
    assert sandbox.request_count(TOKEN) == 1
    assert client.cc_query(mch_order_no="o-1").data.paid  # type: ignore[union-attr]


def test_after_an_unknown_outcome_resending_the_same_order_number_never_charges_twice(
    sandbox: SandboxServer, charge: Charge, card: str
) -> None:
    sandbox.set_faults(drop_after_charge_rate=1.0, endpoints=(TOKEN,))
    with pytest.raises(GatewayOutcomeUnknown):
        charge("o-1", card)
    sandbox.clear_faults()
    again = charge("o-1", card)
    assert again.data is not None and again.data.paid
    assert sandbox.ledger().charges("o-1") == 1


@pytest.mark.parametrize("fault", ["error_500_rate", "drop_after_charge_rate",
                                   "error_502_after_charge_rate"])  # fmt: skip
def test_queries_are_retried_through_faults_and_give_up_as_unknown(
    sandbox: SandboxServer, client: IotpayClient, fault: str
) -> None:
    sandbox.set_faults(**{fault: 1.0, "endpoints": ("cc_query",)})
    with pytest.raises(GatewayOutcomeUnknown):
        client.cc_query(mch_order_no="o-1")
    assert sandbox.request_count("cc_query", "o-1") == FAST_QUERY_RETRY.attempts


def test_a_query_survives_a_partly_failing_gateway(
    sandbox: SandboxServer, client: IotpayClient, charge: Charge, card: str
) -> None:
    charge("o-1", card)
    sandbox.set_faults(error_500_rate=0.5, endpoints=("cc_query",), seed=3)
    retry = QueryRetry(attempts=20, base_delay=0.001, max_delay=0.001)
    with sandbox.client(query_retry=retry) as patient:
        for _ in range(5):
            assert patient.cc_query(mch_order_no="o-1").data.paid  # type: ignore[union-attr]
    assert sandbox.request_count("cc_query", "o-1") > 5  # some 500s were retried


def _outcomes(seed: int) -> list[str]:
    with running_sandbox(seed=seed) as sandbox, sandbox.client() as c:
        add_card(c, "c")
        sandbox.set_faults(error_500_rate=0.3, drop_after_charge_rate=0.3, endpoints=(TOKEN,))
        seen = []
        for i in range(12):
            try:
                reply = c.cc_purchasewithtoken(mch_order_no=f"o-{i}", mch_user_id="u",
                                               card_id="c", amount=100,
                                               notify_url="http://127.0.0.1:9/n")  # fmt: skip
                seen.append(reply.ret_code)
            except GatewayOutcomeUnknown as exc:
                seen.append(str(exc).split(": ")[-1])
        return seen


def test_faults_are_reproducible_from_a_seed() -> None:
    first, second = _outcomes(seed=11), _outcomes(seed=11)
    assert first == second
    assert {"SUCCESS", "HTTP 500"} <= set(first)
    assert any("RemoteDisconnected" in o or "Reset" in o for o in first)
    assert _outcomes(seed=12) != first
