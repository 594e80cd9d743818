"""/healthz and /metrics served by the receiver."""

from __future__ import annotations

import requests
from fastapi import BackgroundTasks, FastAPI

from billing.metrics import Metrics
from billing.receiver import ReceiverServer
from billing.sandbox import cards
from billing.services.ports import Deps
from tests.receiver.helpers import NOTIFY, all_applied, notify_fields, signed, subscribe, wait_until


def test_healthz_is_ok_when_the_database_answers(
    receiver: ReceiverServer, http: requests.Session
) -> None:
    answer = http.get(receiver.url + "/healthz", timeout=10)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_metrics_expose_the_counters_and_the_database_gauges(
    receiver: ReceiverServer, http: requests.Session, deps: Deps, metrics: Metrics
) -> None:
    subscribe(deps, cards.APPROVE)  # one open invoice, due now
    body = signed(notify_fields())
    for payload in (body, body, b"junk"):
        http.post(receiver.url + NOTIFY, data=payload, timeout=10)
    assert wait_until(lambda: all_applied(deps.store, metrics))
    metrics.charge("succeeded", 1850, "CAD")

    answer = http.get(receiver.url + "/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = set(answer.text.splitlines())
    assert {
        'billing_notifies_total{result="discrepancy"} 1.0',
        'billing_notifies_total{result="duplicate"} 1.0',
        'billing_notifies_total{result="rejected"} 1.0',
        'billing_charges_total{outcome="succeeded"} 1.0',
        'billing_charges_total{outcome="unknown"} 0.0',
        'billing_charged_amount_cents_total{currency="CAD"} 1850.0',
        "billing_notify_lag_seconds_count 0.0",
        "billing_db_up 1.0",
        "billing_invoices_due 1.0",
        'billing_attempts_in_flight{state="unknown"} 0.0',
        'billing_subscriptions{status="active"} 1.0',
        'billing_subscriptions{status="past_due"} 0.0',
        'billing_subscriptions{status="unpaid"} 0.0',
        "billing_notifications_unapplied 0.0",
    } <= lines
    assert "python_gc" not in answer.text  # the app's own registry, not the global one


def boom() -> None:
    raise RuntimeError("a bug")


def boom_later(background: BackgroundTasks) -> dict[str, str]:
    background.add_task(boom)
    return {"status": "answered"}


def test_a_bug_in_a_route_is_a_503_not_a_500_and_the_server_keeps_serving(
    receiver: ReceiverServer, http: requests.Session
) -> None:
    app = receiver.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/boom", boom)
    app.add_api_route("/boom-later", boom_later)
    answer = http.get(receiver.url + "/boom", timeout=10)
    assert (answer.status_code, answer.text) == (503, "FAIL")
    later = http.get(receiver.url + "/boom-later", timeout=10)
    assert (later.status_code, later.json()) == (200, {"status": "answered"})
    assert http.get(receiver.url + "/healthz", timeout=10).status_code == 200
