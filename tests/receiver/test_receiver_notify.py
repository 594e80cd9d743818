"""POST /iotpay/notify over real HTTP: what is stored, and what each answer tells the gateway."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from billing.clock import FixedClock
from billing.metrics import Metrics
from billing.receiver import ReceiverServer, create_app
from billing.sandbox import DEFAULT_MERCHANT
from billing.services.ports import Deps, EngineConfig
from billing.store.engine import Store
from billing.store.models import Event, GatewayNotification
from tests.receiver.conftest import MAX_BODY
from tests.receiver.helpers import (
    NOTIFY,
    all_applied,
    count,
    notifications,
    notify_fields,
    signed,
    wait_until,
)

FUZZ = settings(max_examples=40, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def post(http: requests.Session, receiver: ReceiverServer, body: bytes | Iterator[bytes],
         content_type: str = "application/json;charset=UTF-8") -> requests.Response:
    return http.post(receiver.url + NOTIFY, data=body, headers={"Content-Type": content_type},
                     timeout=10)


def assert_answer(response: requests.Response, status: int, text: str) -> None:
    assert (response.status_code, response.text) == (status, text)
    assert response.headers["content-type"].startswith("text/plain")


def test_a_genuine_notify_is_stored_before_success_is_answered(
    receiver: ReceiverServer, http: requests.Session, store: Store, metrics: Metrics
) -> None:
    answer = post(http, receiver, signed(notify_fields()))
    assert_answer(answer, 200, "SUCCESS")
    rows = notifications(store)  # no waiting: the row was committed before the answer
    assert len(rows) == 1
    assert rows[0].dedupe_key.startswith("P26011507AB00000001:")
    assert json.loads(rows[0].raw_body)["sign"]
    assert wait_until(lambda: all_applied(store, metrics))
    # there is no attempt NOSUCHORDER-01: applying keeps it as a discrepancy
    assert notifications(store)[0].outcome == "discrepancy"
    assert metrics.registry.get_sample_value(
        "billing_notifies_total", {"result": "discrepancy"}) == 1


def test_a_redelivered_notify_is_acknowledged_and_stored_once(
    receiver: ReceiverServer, http: requests.Session, store: Store, metrics: Metrics
) -> None:
    body = signed(notify_fields())
    for _ in range(3):
        assert_answer(post(http, receiver, body), 200, "SUCCESS")
    assert count(store, GatewayNotification) == 1
    assert metrics.registry.get_sample_value(
        "billing_notifies_total", {"result": "duplicate"}) == 2
    assert wait_until(lambda: all_applied(store, metrics))


def test_a_new_status_for_the_same_order_is_a_new_fact_not_a_duplicate(
    receiver: ReceiverServer, http: requests.Session, store: Store, metrics: Metrics
) -> None:
    assert_answer(post(http, receiver, signed(notify_fields(status=2))), 200, "SUCCESS")
    assert_answer(post(http, receiver, signed(notify_fields(status=3))), 200, "SUCCESS")
    keys = [r.dedupe_key for r in notifications(store)]
    assert len(keys) == len(set(keys)) == 2
    assert wait_until(lambda: all_applied(store, metrics))


def _forged() -> bytes:
    doc = json.loads(signed(notify_fields()))
    doc["amount"] = 1  # the sign was computed over 1850
    return json.dumps(doc).encode()


def _without(name: str) -> bytes:
    fields = notify_fields()
    del fields[name]
    return signed(fields)


def _with_lone_surrogate(name: str) -> bytes:
    """A notify whose ``name`` is an escaped lone surrogate: valid JSON, but no UTF-8 text, so
    no sign can be computed over it (a sign field is added so the sign check is reached)."""
    fields = {**notify_fields(), "sign": "0" * 32, name: "\ud800"}
    return json.dumps(fields).encode()  # ensure_ascii: written as the escape "\\ud800"


UNPARSEABLE = {
    "nested 60000 deep": b"[" * 60_000,
    "nested deep in a field": b'{"payOrderId": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "lone surrogate in a value": _with_lone_surrogate("cardNum"),
    "lone surrogate in the sign": _with_lone_surrogate("sign"),
    "lone surrogate in a key": json.dumps(
        {**notify_fields(), "sign": "0" * 32, "x\udc00": "1"}).encode(),
    "raw utf-8 surrogate bytes": signed(notify_fields()).replace(
        b'"cardType":"UP"', b'"cardType":"\xed\xa0\x80"'),
}
"""Bodies the JSON parser or the signer chokes on, which once answered 503 with an ERROR."""


REJECTED = {
    "forged amount": _forged(),
    "signed with another key": signed(notify_fields(), key="not-the-merchant-key"),
    "another merchant, validly signed": signed(notify_fields(mchId="10000999")),
    "missing amount": _without("amount"),
    "missing sign": json.dumps(notify_fields()).encode(),
    "empty payOrderId": signed(notify_fields(payOrderId="")),
    "amount not a number": signed(notify_fields(amount="lots")),
    "not json": b"payOrderId=P1&status=2",
    "truncated json": signed(notify_fields())[:-5],
    "json array": b"[1, 2, 3]",
    "json string": b'"SUCCESS"',
    "empty body": b"",
    "invalid utf-8": b'{"payOrderId": "\xff\xfe"}',
    **UNPARSEABLE,
}


@pytest.mark.parametrize("body", REJECTED.values(), ids=REJECTED.keys())
def test_a_notify_that_is_not_genuine_gets_400_fail_and_changes_nothing(
    body: bytes, receiver: ReceiverServer, http: requests.Session, store: Store,
    metrics: Metrics,
) -> None:
    assert_answer(post(http, receiver, body), 400, "FAIL")
    assert count(store, GatewayNotification) == 0
    assert count(store, Event) == 0
    assert metrics.registry.get_sample_value(
        "billing_notifies_total", {"result": "rejected"}) == 1


@pytest.mark.parametrize("body", UNPARSEABLE.values(), ids=UNPARSEABLE.keys())
def test_an_unparseable_notify_is_a_warning_not_an_error(
    body: bytes, receiver: ReceiverServer, http: requests.Session, store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing is wrong with the engine when a body can't be read: a 503 would make the gateway
    resend it forever, and an ERROR would page someone for junk."""
    caplog.set_level(logging.INFO)
    assert_answer(post(http, receiver, body), 400, "FAIL")
    assert count(store, GatewayNotification) == 0
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.WARNING] == []
    assert any("notify rejected: NotifyMalformed" in r.getMessage() for r in caplog.records)


def test_the_content_type_does_not_matter_the_sign_does(
    receiver: ReceiverServer, http: requests.Session, store: Store, metrics: Metrics
) -> None:
    body = signed(notify_fields())
    assert_answer(post(http, receiver, body, "text/plain"), 200, "SUCCESS")
    assert_answer(post(http, receiver, b"a=1&b=2", "application/x-www-form-urlencoded"),
                  400, "FAIL")
    assert count(store, GatewayNotification) == 1
    assert wait_until(lambda: all_applied(store, metrics))


def test_a_body_over_the_limit_is_refused_with_413_without_reading_it(
    receiver: ReceiverServer, http: requests.Session, store: Store
) -> None:
    assert_answer(post(http, receiver, b" " * MAX_BODY), 400, "FAIL")  # at the limit: read
    declared = post(http, receiver, b"{" + b" " * MAX_BODY)
    assert_answer(declared, 413, "FAIL")
    assert declared.headers["connection"] == "close"
    chunked = post(http, receiver, iter([b"{"] + [b" " * 1000] * (MAX_BODY // 1000 + 1)))
    assert_answer(chunked, 413, "FAIL")
    assert count(store, GatewayNotification) == 0


def test_a_declared_oversized_body_is_refused_before_it_arrives(
    receiver: ReceiverServer,
) -> None:
    """Only the headers and a few bytes are sent; a server waiting for the body would hang."""
    head = (f"POST {NOTIFY} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * MAX_BODY}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(head + b'{"payOrderId": ')
        answer = b""
        while chunk := sock.recv(4096):  # the server closes the connection after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b"\r\n\r\nFAIL")


def test_other_methods_and_unknown_paths_are_4xx(
    receiver: ReceiverServer, http: requests.Session
) -> None:
    assert http.get(receiver.url + NOTIFY, timeout=5).status_code == 405
    assert http.post(receiver.url + "/iotpay/notify/extra", data=b"{}", timeout=5).status_code \
        == 404
    assert http.get(receiver.url + "/nothing-here", timeout=5).status_code == 404


CONTENT_TYPES = st.sampled_from([
    "application/json;charset=UTF-8", "application/json", "text/plain", "text/html",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/octet-stream", "", "garbage/;;;=", "application/json; charset=latin-1",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)
NOTIFY_LIKE = st.fixed_dictionaries(
    {name: JSON_VALUES for name in ("payOrderId", "mchId", "mchOrderNo", "amount", "currency",
                                    "payType", "status", "sign")},
    optional={"cardNum": JSON_VALUES, "paySuccTime": JSON_VALUES},
)


@FUZZ
@given(body=st.binary(max_size=3000) | NOTIFY_LIKE.map(lambda d: json.dumps(d).encode()),
       content_type=CONTENT_TYPES)
def test_junk_never_gets_a_500(
    receiver: ReceiverServer, http: requests.Session, body: bytes, content_type: str
) -> None:
    answer = post(http, receiver, body, content_type)
    assert (answer.status_code, answer.text) == (400, "FAIL")


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(sorted(notify_fields())), JSON_VALUES, max_size=8))
def test_validly_signed_notifies_with_odd_values_never_get_a_500(
    receiver: ReceiverServer, http: requests.Session, fields: dict[str, object]
) -> None:
    """Only someone with the key can send these; still, no value may break the answer."""
    answer = post(http, receiver, signed({**notify_fields(), **fields}))
    assert answer.status_code in (200, 400, 503), answer.text
    assert answer.text == ("SUCCESS" if answer.status_code == 200 else "FAIL")


@pytest.mark.parametrize("url", [
    "sqlite:///{tmp}/no/such/directory/billing.db",
    "postgresql+psycopg://nobody@127.0.0.1:1/nothing",
], ids=["sqlite", "postgresql"])
def test_an_unavailable_database_answers_503_so_the_gateway_redelivers(
    url: str, tmp_path: Path, clock: FixedClock, http: requests.Session
) -> None:
    store = Store.open(url.format(tmp=tmp_path))
    deps = Deps(store, gateway=None, clock=clock, config=EngineConfig())  # type: ignore[arg-type]
    app = create_app(deps, mch_id=DEFAULT_MERCHANT.mch_id,
                     mch_key=SecretStr(DEFAULT_MERCHANT.key))
    try:
        with ReceiverServer(app) as receiver:
            assert_answer(post(http, receiver, signed(notify_fields())), 503, "FAIL")
            assert_answer(post(http, receiver, b"junk"), 400, "FAIL")  # rejected before the DB
            health = http.get(receiver.url + "/healthz", timeout=10)
            assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
            scrape = http.get(receiver.url + "/metrics", timeout=10)
            assert scrape.status_code == 200
            assert "billing_db_up 0.0" in scrape.text
            assert 'billing_notifies_total{result="error"} 1.0' in scrape.text
    finally:
        store.close()
