"""API keys: only a live key opens ``/v1``; without one nothing changes; the gateway's and the
browser's routes stay open; the database never holds a key, only its hash."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from billing.cli.app import main
from billing.services.api_keys import authenticate, create_api_key, hash_key, revoke_api_key
from billing.services.ports import Deps
from billing.store.models import ApiKey, Customer
from billing.store.uow import UnitOfWork
from tests.api.conftest import Api, new_customer

BODY = {"external_id": "cus_x", "email": "x@example.com", "name": "X"}


def customers(deps: Deps) -> int:
    with UnitOfWork(deps.store) as uow:
        return int(uow.session.scalar(select(func.count(Customer.id))) or 0)


@pytest.mark.parametrize("header", [
    None, "Bearer bk_live_not-a-key", "Bearer ", "Basic dXNlcjpwYXNz", "bk_live_raw",
    "Bearer " + "a" * 500,
])
def test_no_key_or_a_wrong_key_is_401_and_creates_nothing(
        anon: Api, api_key: str, deps: Deps, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = anon.post("/v1/customers", json=BODY, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:billing:problem:unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert customers(deps) == 0


def test_a_near_miss_key_is_refused(anon: Api, api_key: str, deps: Deps) -> None:
    wrong = api_key[:-1] + ("A" if api_key[-1] != "A" else "B")
    response = anon.get("/v1/customers", headers={"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401
    assert anon.get("/v1/customers", headers={"Authorization": f"Bearer {api_key}"}).ok


def test_a_revoked_key_is_refused_from_its_next_request(api: Api, deps: Deps) -> None:
    new_customer(api, "cus_before")
    revoke_api_key(deps.store, "tests", deps.clock.now())
    response = api.post("/v1/customers", json=BODY)
    assert response.status_code == 401
    assert customers(deps) == 1


def test_an_invalid_body_without_a_key_is_still_401(anon: Api) -> None:
    """Authentication comes first: a stranger learns nothing about the schema."""
    assert anon.post("/v1/customers", json={"nonsense": 1}).status_code == 401


def test_gateway_and_operator_routes_need_no_key(anon: Api) -> None:
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/metrics").status_code == 200
    # The notify is verified by its own signature: a bad one is refused as before, not 401.
    assert anon.post("/iotpay/notify", data=b"{}").status_code != 401
    assert anon.get("/iotpay/return/addcard", params={"cardId": "x"}).status_code != 401


def test_only_the_hash_of_a_key_is_stored(deps: Deps) -> None:
    view, secret = create_api_key(deps.store, "shop", deps.clock.now())
    assert secret.startswith("bk_live_") and len(secret) > 40
    with deps.store.engine.connect() as conn:
        dumped = json.dumps([list(r) for r in conn.execute(text("SELECT * FROM api_keys"))],
                            default=str)
    assert secret not in dumped and hash_key(secret) in dumped
    assert view.prefix == secret[:12] and secret[12:] not in dumped
    assert authenticate(deps.store, secret, deps.clock.now()) is not None


def test_two_keys_are_never_alike_and_names_are_unique(deps: Deps) -> None:
    _, one = create_api_key(deps.store, "a", deps.clock.now())
    _, two = create_api_key(deps.store, "b", deps.clock.now())
    assert one != two
    with UnitOfWork(deps.store) as uow:
        assert uow.session.scalar(select(func.count(ApiKey.id))) == 2


def test_cli_creates_lists_and_revokes_keys(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)
    assert main(["api-keys", "create", "shop"]) == 0
    secret = capsys.readouterr().out.strip()
    assert secret.startswith("bk_live_")
    assert main(["api-keys", "create", "shop"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["api-keys", "create", "bad name!"]) == 2
    assert main(["api-keys", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "shop" and listed["revoked_at"] is None
    assert secret[12:] not in json.dumps(listed)
    assert main(["api-keys", "revoke", "shop"]) == 0
    assert main(["api-keys", "revoke", "nobody"]) == 2
    capsys.readouterr()
    assert main(["api-keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["revoked_at"] is not None
