"""What ``billing serve`` and ``billing daemon`` listen on: the API on the public port, and
``/healthz`` and ``/metrics`` moved to an internal port when ``BILLING_INTERNAL_PORT`` is set."""

from __future__ import annotations

import requests
from pydantic import SecretStr

from billing.api.serving import http_servers
from billing.bootstrap import Merchant, Runtime
from billing.sandbox import DEFAULT_MERCHANT
from billing.services.api_keys import create_api_key
from billing.services.ports import Deps
from billing.settings import Settings


def runtime(deps: Deps, **settings: object) -> Runtime:
    merchant = Merchant(DEFAULT_MERCHANT.mch_id, SecretStr(DEFAULT_MERCHANT.key),
                        DEFAULT_MERCHANT.login_name)
    return Runtime(deps, Settings(http_port=0, **settings), merchant)


def test_without_an_internal_port_everything_is_on_the_public_one(deps: Deps) -> None:
    _, key = create_api_key(deps.store, "k", deps.clock.now())
    with http_servers(runtime(deps)) as servers:
        assert servers.internal_url is None
        assert requests.get(servers.url + "/healthz", timeout=10).status_code == 200
        listed = requests.get(servers.url + "/v1/plans", timeout=10,
                              headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200 and listed.json()["data"]


def test_an_internal_port_takes_health_and_metrics_off_the_public_one(deps: Deps) -> None:
    with http_servers(runtime(deps, internal_port=0)) as servers:
        inside = servers.internal_url
        assert inside is not None and inside != servers.url
        assert requests.get(inside + "/healthz", timeout=10).json() == {"status": "ok"}
        assert "billing_" in requests.get(inside + "/metrics", timeout=10).text
        assert requests.get(servers.url + "/healthz", timeout=10).status_code == 404
        assert requests.get(servers.url + "/metrics", timeout=10).status_code == 404
        assert requests.get(inside + "/v1/plans", timeout=10).status_code == 404
        assert requests.get(servers.url + "/v1/plans", timeout=10).status_code == 401
        assert requests.get(servers.url + "/openapi.json", timeout=10).status_code == 200
