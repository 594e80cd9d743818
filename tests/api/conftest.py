"""Fixtures for API tests: the real app (receiver + ``/v1``) on uvicorn, over a real sandbox.

The sandbox, gateway and server fixtures are tests/receiver's: the server's socket is bound
first so ``public_url`` has its real port; the sandbox shares the engine's ``FixedClock``.
``api`` is a ``requests.Session`` that sends a fresh API key; ``anon`` sends none. Plans are
the repository's ``plans/`` folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from billing.api.context import ApiContext
from billing.catalog.loader import load_catalog
from billing.clock import FixedClock
from billing.documents.merchant import Merchant
from billing.gateway import IotpayClient
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT
from billing.services.api_keys import create_api_key
from billing.services.catalog import apply_catalog
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from billing.store.uow import UnitOfWork
from tests.receiver.conftest import gateway, sandbox, server

__all__ = ["anon", "api", "api_key", "app_server", "deps", "gateway", "sandbox", "server"]

PLANS = Path(__file__).resolve().parents[2] / "plans"


class Api(requests.Session):
    """A session whose paths are relative to the server: ``api.get("/v1/customers")``."""

    def __init__(self, base: str, key: str | None) -> None:
        super().__init__()
        self.base = base
        if key is not None:
            self.headers["Authorization"] = f"Bearer {key}"

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return super().request(method, self.base + str(url), *args, **kwargs)


@pytest.fixture
def deps(store: Store, gateway: IotpayClient, clock: FixedClock, server: ReceiverServer) -> Deps:
    deps = Deps(store, gateway, clock, EngineConfig(public_url=server.url,
                                                    mch_id=DEFAULT_MERCHANT.mch_id))
    with UnitOfWork(store) as uow:
        apply_catalog(uow, clock, load_catalog(PLANS))
    return deps


@pytest.fixture
def app_server(server: ReceiverServer, deps: Deps) -> ReceiverServer:
    """The public app with the API, listening."""
    merchant = Merchant(name="Test shop", legal_name="Test shop Inc.", address=("1 Main St",),
                        email="billing@example.com", logo=None, gst_hst_number=None,
                        qst_number=None)
    server.app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                            mch_key=SecretStr(DEFAULT_MERCHANT.key),
                            metrics=Metrics(deps.store, deps.clock),
                            api=ApiContext(deps, merchant, "America/Toronto"))
    return server.start()


@pytest.fixture
def api_key(deps: Deps) -> str:
    _, secret = create_api_key(deps.store, "tests", deps.clock.now())
    return secret


@pytest.fixture
def api(app_server: ReceiverServer, api_key: str) -> Iterator[Api]:
    with Api(app_server.url, api_key) as session:
        yield session


@pytest.fixture
def anon(app_server: ReceiverServer) -> Iterator[Api]:
    with Api(app_server.url, None) as session:
        yield session


def new_customer(api: Api, external_id: str = "cus_1", **extra: Any) -> dict[str, Any]:
    body = {"external_id": external_id, "email": f"{external_id}@example.com",
            "name": "Ada Lovelace", **extra}
    response = api.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
