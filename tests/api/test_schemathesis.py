"""Schemathesis against the live app over HTTP: no input yields a 500, every answer matches the
OpenAPI document (status declared, content type declared, body of the declared schema), and
input the schema forbids is refused, and changes nothing: every state change writes an event in
its own transaction, so a refused request must leave the event count as it was.

Bounded for CI (``EXAMPLES`` per operation and mode, ~1 minute on SQLite); raise it locally
with ``BILLING_API_FUZZ_EXAMPLES=500``. Authenticated with a real key, so the routes' own
validation and services are what answers, not the 401 in front of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from billing.receiver import ReceiverServer
from billing.services.ports import Deps
from billing.store.models import Event
from billing.store.uow import UnitOfWork
from tests.api.conftest import Api, new_customer


def events(deps: Deps) -> int:
    with UnitOfWork(deps.store) as uow:
        return int(uow.session.scalar(select(func.count(Event.id))) or 0)


EXAMPLES = int(os.environ.get("BILLING_API_FUZZ_EXAMPLES", "25"))
CHECKS: list[Callable[..., Any]] = [not_a_server_error, status_code_conformance,
                                    content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_yields_a_500_or_an_undeclared_answer(
        app_server: ReceiverServer, api: Api, api_key: str, deps: Deps,
        mode: GenerationMode) -> None:
    new_customer(api, "cus_1")  # something for generated requests to find, sometimes
    schema = schemathesis.openapi.from_url(app_server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {api_key}"}
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: schemathesis.Case) -> None:
            before = events(deps)
            response = case.call_and_validate(base_url=app_server.url, headers=headers,
                                              checks=checks, timeout=30)
            if response.status_code >= 400:
                assert events(deps) == before, (case.method, case.path, response.text)

        exercise()
