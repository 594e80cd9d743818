"""The /admin/ JSON API: what a sandbox in another process offers the engine's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from billing.gateway import IotpayClient
from billing.sandbox import SandboxServer, cards
from billing.sandbox.testing import NotifySink, add_card
from tests.gateway.conftest import Charge


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[Any]:
    session = requests.Session()

    def call(method: str, path: str, body: dict[str, Any] | None = None,
             status: int = 200) -> dict[str, Any]:  # fmt: skip
        response = session.request(method, f"{sandbox.root_url}/admin/{path}", json=body, timeout=5)
        assert response.status_code == status, response.text
        answer: dict[str, Any] = response.json()
        return answer

    yield call
    session.close()


def test_health_lists_merchants(admin: Any) -> None:
    assert admin("GET", "health") == {"ok": True, "merchants": ["10000701"]}


def test_ledger_shows_charges_per_order_number(admin: Any, charge: Charge, card: str,
                                               client: IotpayClient) -> None:  # fmt: skip
    add_card(client, "poor", cards.DECLINE_INSUFFICIENT_FUNDS)
    charge("o-1", card)
    charge("o-1", card)
    charge("o-2", "poor")
    ledger = admin("GET", "ledger")
    assert ledger["charges"] == {"10000701": {"o-1": 1, "o-2": 0}}
    assert ledger["totalCharges"] == 1
    first, second = ledger["orders"]
    assert (first["mchOrderNo"], first["charged"], first["amount"]) == ("o-1", 1, 1500)
    assert first["status"] in (2, 3)  # 3 once the notify has been acknowledged
    assert (second["status"], second["retMsg"], second["charged"]) == (9, "Insufficient funds", 0)


def test_notify_log_and_wait_idle(admin: Any, charge: Charge, card: str, sink: NotifySink) -> None:
    sink.script((500, "no"))
    charge("o-1", card)
    assert admin("POST", "wait-idle", {"timeout": 3}) == {"idle": True}
    attempts = admin("GET", "notifies")["attempts"]
    assert [(a["attempt"], a["httpStatus"], a["acknowledged"]) for a in attempts] == [
        (1, 500, False), (2, 200, True)]  # fmt: skip
    assert attempts[0]["url"] == sink.url and attempts[0]["payType"] == "pay"


def test_request_counts(admin: Any, charge: Charge, card: str) -> None:
    charge("o-1", card)
    charge("o-1", card)
    counts = admin("GET", "requests")["requests"]
    assert counts["cc_purchasewithtoken"] == {"o-1": 2}
    assert counts["cc_directaddcard"] == {"card-ok": 1}


def test_faults_can_be_set_at_runtime_and_bad_input_changes_nothing(
    admin: Any, sandbox: SandboxServer
) -> None:
    faults = admin("POST", "faults", {"error500Rate": 0.25, "endpoints": ["cc_query"], "seed": 4})
    assert faults["error500Rate"] == 0.25 and faults["endpoints"] == ["cc_query"]
    assert sandbox.faults.error_500_rate == 0.25
    error = admin("POST", "faults", {"error500Rate": 2}, status=400)["error"]
    assert "error500Rate" in error
    error = admin("POST", "faults", {"noSuchFault": 1}, status=400)["error"]
    assert "noSuchFault" in error
    assert admin("GET", "faults")["error500Rate"] == 0.25
    assert admin("POST", "faults", {"clear": True})["error500Rate"] == 0.0


def test_clock_can_be_set_and_advanced_and_settles_pending_orders(
    admin: Any, client: IotpayClient, charge: Charge, sandbox: SandboxServer
) -> None:
    assert admin("GET", "clock") == {"now": "2025-01-15T17:00:00+00:00"}
    add_card(client, "slow", cards.PENDING_THEN_APPROVE)
    charge("o-1", "slow")
    assert admin("POST", "clock", {"advanceSeconds": 120})["now"] == "2025-01-15T17:02:00+00:00"
    assert sandbox.ledger().charges("o-1") == 1
    assert admin("POST", "clock", {"at": "2025-03-01T00:00:00Z"})["now"].startswith("2025-03-01")
    assert "error" in admin("POST", "clock", {"at": "yesterday"}, status=400)
    assert "error" in admin("POST", "clock", {}, status=400)


def test_reset_forgets_everything_but_merchants(admin: Any, charge: Charge, card: str,
                                                sandbox: SandboxServer) -> None:  # fmt: skip
    charge("o-1", card)
    sandbox.set_faults(error_500_rate=1.0, endpoints=("cc_refund",))
    assert admin("POST", "reset") == {"ok": True}
    assert admin("GET", "ledger")["orders"] == []
    assert admin("GET", "requests")["requests"] == {}
    assert sandbox.faults.error_500_rate == 0.0
    assert not charge("o-2", card).ok  # the card is gone too


def test_unknown_admin_paths_and_bad_bodies(admin: Any, sandbox: SandboxServer) -> None:
    assert "error" in admin("GET", "nothing", status=404)
    with requests.Session() as s:
        bad = s.post(f"{sandbox.root_url}/admin/faults", data=b"[]", timeout=5)
        assert bad.status_code == 400
