"""``Idempotency-Key``: one effect per key, the first answer replayed, another body refused,
keys expiring after 24 hours by the engine's clock, and the database deciding between two
requests that arrive together (on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from billing.clock import FixedClock
from billing.services import idempotency
from billing.services.api_keys import create_api_key
from billing.services.ports import Deps
from billing.store.models import Customer, IdempotencyKey
from billing.store.uow import UnitOfWork
from tests.api.conftest import Api, new_customer

BODY = {"external_id": "cus_1", "email": "ann@example.com", "name": "Ann"}


def count(deps: Deps, model: type[Customer] | type[IdempotencyKey]) -> int:
    with UnitOfWork(deps.store) as uow:
        return int(uow.session.scalar(select(func.count(model.id))) or 0)


def test_the_same_key_replays_the_first_response(api: Api, deps: Deps) -> None:
    first = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    again = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(deps, Customer) == 1


def test_key_order_in_the_body_does_not_matter(api: Api, deps: Deps) -> None:
    api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    swapped = dict(reversed(list(BODY.items())))
    again = api.post("/v1/customers", json=swapped, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_422_and_does_nothing(api: Api, deps: Deps) -> None:
    api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    other = api.post("/v1/customers", json={**BODY, "external_id": "cus_2"},
                     headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422
    problem = other.json()
    assert problem["type"] == "urn:billing:problem:idempotency-key-reused"
    assert problem["field"] == "Idempotency-Key"
    assert count(deps, Customer) == 1


def test_the_same_key_on_another_path_is_422(api: Api) -> None:
    new_customer(api, "cus_1")
    api.post("/v1/customers/cus_1/card-setups", headers={"Idempotency-Key": "k9"})
    other = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k9"})
    assert other.status_code == 422


def test_a_refusal_is_replayed_too(api: Api, deps: Deps) -> None:
    new_customer(api, "cus_1")
    first = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "dup"})
    assert first.status_code == 409
    again = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "dup"})
    assert again.status_code == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json() == first.json()


def test_keys_belong_to_one_api_key(api: Api, deps: Deps, app_server: object) -> None:
    """Another merchant integration using the same string gets its own key space."""
    _, other_key = create_api_key(deps.store, "other", deps.clock.now())
    api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    other = api.post("/v1/customers", json={**BODY, "external_id": "cus_2"},
                     headers={"Idempotency-Key": "k1",
                              "Authorization": f"Bearer {other_key}"})
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers


def test_a_key_expires_after_24_hours_of_the_engines_clock(api: Api, deps: Deps,
                                                           clock: FixedClock) -> None:
    start = clock.now()
    api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    clock.set(start + timedelta(hours=23, minutes=59))
    assert api.post("/v1/customers", json=BODY,
                    headers={"Idempotency-Key": "k1"}).headers.get("Idempotent-Replayed")
    clock.set(start + timedelta(hours=24))
    fresh = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "k1"})
    # Run again for real: the customer exists now, so this time the answer is a conflict.
    assert fresh.status_code == 409 and "Idempotent-Replayed" not in fresh.headers


def test_expired_keys_are_purged(deps: Deps, clock: FixedClock) -> None:
    _, _ = create_api_key(deps.store, "k", clock.now())
    [key_id] = _key_ids(deps)
    for n in range(3):
        claim = idempotency.begin(deps.store, key_id, f"k{n}", "f", clock.now())
        assert isinstance(claim, idempotency.Claim)
        idempotency.finish(deps.store, claim, 200, "{}")
    assert count(deps, IdempotencyKey) == 3
    later = clock.now() + idempotency.TTL
    assert idempotency.purge_expired(deps.store, later) == 3
    assert count(deps, IdempotencyKey) == 0


def test_a_duplicate_while_the_first_is_in_progress_is_409(api: Api, deps: Deps) -> None:
    [key_id] = _key_ids(deps)
    print_ = idempotency.fingerprint("POST", "/v1/customers", {
        "external_id": "cus_1", "email": "ann@example.com", "name": "Ann", "locale": "en",
        "timezone": None, "province": None})
    claim = idempotency.begin(deps.store, key_id, "busy", print_, deps.clock.now())
    assert isinstance(claim, idempotency.Claim)
    response = api.post("/v1/customers", json=BODY, headers={"Idempotency-Key": "busy"})
    assert response.status_code == 409
    assert response.json()["type"] == "urn:billing:problem:idempotency-in-progress"
    assert response.headers["Retry-After"] == "1"
    assert count(deps, Customer) == 0


def _key_ids(deps: Deps) -> list[int]:
    from billing.store.models import ApiKey

    with UnitOfWork(deps.store) as uow:
        return list(uow.session.scalars(select(ApiKey.id)))


def test_two_concurrent_requests_with_one_key_have_one_effect(api: Api, api_key: str,
                                                              deps: Deps) -> None:
    """Eight threads send the same subscription request with the same key at once: one
    subscription is created; every other answer is its replay or a 409 "in progress"."""
    new_customer(api, "cus_1")
    body = {"customer": "cus_1", "plan": "starter-monthly"}
    gate = threading.Barrier(8)
    answers: list[requests.Response] = []
    lock = threading.Lock()

    def send() -> None:
        with Api(api.base, api_key) as session:
            gate.wait()
            response = session.post("/v1/subscriptions", json=body,
                                    headers={"Idempotency-Key": "same"})
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}, [r.text for r in answers]
    created = [r for r in answers if r.status_code == 201]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in created) == 1
    listed = api.get("/v1/subscriptions").json()
    assert len(listed["data"]) == 1


def test_the_database_decides_between_two_claims(deps: Deps) -> None:
    """The service alone, many threads: exactly one ``Claim``; the rest see it in progress."""
    _, _ = create_api_key(deps.store, "k", deps.clock.now())
    [key_id] = _key_ids(deps)
    gate = threading.Barrier(6)
    results: list[object] = []

    def claim() -> None:
        gate.wait()
        try:
            results.append(idempotency.begin(deps.store, key_id, "one", "f", deps.clock.now()))
        except idempotency.InProgress as exc:
            results.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, idempotency.Claim) for r in results) == 1
    assert sum(isinstance(r, idempotency.InProgress) for r in results) == 5


def test_a_failure_after_the_claim_is_kept_so_a_retry_does_not_act_twice(
        api: Api, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
    """The work fails in a way that may have followed its commit: the key answers 503
    outcome-unknown from then on, rather than letting a retry create a second subscription."""
    from billing.services import merchant_api

    new_customer(api, "cus_1")
    real = merchant_api.get_subscription
    calls = {"n": 0}

    def flaky(deps_: Deps, sub_id: int) -> merchant_api.SubscriptionView:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("read failed after the commit")
        return real(deps_, sub_id)

    monkeypatch.setattr(merchant_api, "get_subscription", flaky)
    body = {"customer": "cus_1", "plan": "starter-monthly"}
    first = api.post("/v1/subscriptions", json=body, headers={"Idempotency-Key": "s1"})
    again = api.post("/v1/subscriptions", json=body, headers={"Idempotency-Key": "s1"})
    assert first.status_code == again.status_code == 503
    assert first.json()["type"] == "urn:billing:problem:outcome-unknown"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/v1/subscriptions").json()["data"]) == 1


def test_the_daemons_idempotency_tick_purges_expired_keys(deps: Deps, clock: FixedClock) -> None:
    from billing.daemon.ticks import BY_NAME, TickContext

    _, _ = create_api_key(deps.store, "k", clock.now())
    [key_id] = _key_ids(deps)
    old = idempotency.begin(deps.store, key_id, "old", "f", clock.now())
    assert isinstance(old, idempotency.Claim)
    later = clock.now() + timedelta(hours=20)
    young = idempotency.begin(deps.store, key_id, "young", "f", later)
    assert isinstance(young, idempotency.Claim)
    assert BY_NAME["idempotency"].run(deps, TickContext(at=later + timedelta(hours=5))) == 1
    assert count(deps, IdempotencyKey) == 1


def test_a_malformed_idempotency_key_is_a_422_on_that_header(api: Api, deps: Deps) -> None:
    for key in ("x" * 256, "two words", "", "clé"):
        response = api.post("/v1/customers", json=BODY,
                            headers={"Idempotency-Key": key.encode().decode("latin-1")})
        assert response.status_code == 422, key
        assert response.json()["field"] == "Idempotency-Key"
    assert count(deps, Customer) == 0


def test_a_card_number_never_reaches_the_idempotency_table(api: Api, deps: Deps) -> None:
    """Neither the stored response nor the fingerprint's input holds the number or the CVV:
    the fingerprint is computed over the body with secrets masked."""
    from sqlalchemy import text

    from billing.sandbox import cards

    new_customer(api, "cus_1")
    body = {"number": cards.APPROVE, "cvv": "987", "expiry": "1230", "holder": "Ada"}
    first = api.post("/v1/customers/cus_1/cards", json=body, headers={"Idempotency-Key": "c1"})
    assert first.status_code == 201, first.text
    again = api.post("/v1/customers/cus_1/cards", json=body, headers={"Idempotency-Key": "c1"})
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    with deps.store.engine.connect() as conn:
        rows = [" ".join(str(v) for v in r) for r in conn.execute(
            text("SELECT * FROM idempotency_keys"))]
    assert rows and not any(cards.APPROVE in r for r in rows)
    unmasked = idempotency.fingerprint("POST", "/v1/customers/cus_1/cards", body)
    assert not any(unmasked in r for r in rows)
