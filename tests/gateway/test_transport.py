"""Transit failures are classified by what can have reached the gateway.

A fake ``requests`` adapter raises exactly what requests raises in each situation (shapes checked
against requests 2.3x/urllib3 2.x), so each branch is tested without a flaky network; the real
socket cases (refused connection, dropped connection, 5xx) are tested against the sandbox too.
"""

from __future__ import annotations

import random
import socket
from http.client import RemoteDisconnected
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from billing.gateway import (
    GatewayNotSent,
    GatewayOutcomeUnknown,
    IotpayClient,
    QueryRetry,
    default_session,
)

URL = "https://gateway.test/v3/cc_purchasewithtoken"


class FakeAdapter(BaseAdapter):
    """Answers every request with ``outcome``: an exception to raise or ``(status, body)``."""

    def __init__(self, *outcomes: BaseException | tuple[int, bytes]) -> None:
        super().__init__()
        self.outcomes = list(outcomes)
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        outcome = self.outcomes[min(self.sent, len(self.outcomes) - 1)]
        self.sent += 1
        if isinstance(outcome, BaseException):
            raise outcome
        response = requests.Response()
        response.status_code, response._content = outcome
        response.request, response.url = request, str(request.url)
        return response

    def close(self) -> None:
        pass


def _client(adapter: FakeAdapter, sleeps: list[float] | None = None) -> IotpayClient:
    session = requests.Session()
    session.mount("https://", adapter)
    return IotpayClient(
        base_url="https://gateway.test/v3/", mch_id="1", mch_key="k", login_name="l",
        session=session, query_retry=QueryRetry(attempts=3, base_delay=0.5, max_delay=0.8),
        rng=random.Random(0), sleep=(sleeps.append if sleeps is not None else lambda s: None),
    )  # fmt: skip


def _purchase(client: IotpayClient) -> None:
    client.cc_purchasewithtoken(mch_order_no="o-1", mch_user_id="u", card_id="c", amount=100,
                                notify_url="https://m.test/n")  # fmt: skip


def _retry(reason: Exception) -> MaxRetryError:
    return MaxRetryError(None, URL, reason)  # type: ignore[arg-type]


NOT_SENT = [
    requests.ConnectTimeout(_retry(ConnectTimeoutError(None, "connect timed out"))),
    requests.ConnectionError(_retry(NewConnectionError(None, "Connection refused"))),  # type: ignore[arg-type]
    requests.ConnectionError(
        _retry(NameResolutionError("gateway.test", None, socket.gaierror("no such host")))  # type: ignore[arg-type]
    ),
    requests.exceptions.InvalidURL("bad url"),
]
UNKNOWN = [
    requests.ReadTimeout(ReadTimeoutError(None, URL, "read timed out")),  # type: ignore[arg-type]
    requests.ConnectionError(ProtocolError("Connection aborted.", RemoteDisconnected("closed"))),
    requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "x"))),
    requests.ConnectionError(ReadTimeoutError(None, URL, "read timed out")),  # type: ignore[arg-type]
    requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken")),
    requests.exceptions.SSLError(_retry(Urllib3SSLError("bad record mac"))),
    requests.exceptions.ContentDecodingError("bad gzip"),
]


@pytest.mark.parametrize("exc", NOT_SENT, ids=lambda e: type(e).__name__)
def test_failures_before_sending_are_not_sent(exc: Exception) -> None:
    adapter = FakeAdapter(exc)
    with _client(adapter) as client, pytest.raises(GatewayNotSent) as err:
        _purchase(client)
    assert err.value.safe_to_resend and err.value.endpoint == "cc_purchasewithtoken"
    assert err.value.reference == "o-1"
    assert err.value.__cause__ is exc
    assert adapter.sent == 1


@pytest.mark.parametrize("exc", UNKNOWN, ids=lambda e: type(e).__name__)
def test_failures_after_sending_are_unknown_and_never_resent(exc: Exception) -> None:
    adapter = FakeAdapter(exc)
    with _client(adapter) as client, pytest.raises(GatewayOutcomeUnknown) as err:
        _purchase(client)
    assert not err.value.safe_to_resend
    assert adapter.sent == 1


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b"<html>oops</html>"),
        (502, b"Bad Gateway"),
        (503, b'{"retCode":"FAIL"}'),
        (404, b"not found"),
        (200, b"<html>not json</html>"),
        (200, b"[1, 2]"),
        (200, b'{"retMsg": "no code"}'),
        (200, b'{"retCode": "MAYBE"}'),
        (200, b'{"retCode": "SUCCESS", "retMsg": "ok"}'),
        (200, b'{"retCode": "SUCCESS", "retData": {"status": "paid"}}'),
    ],
)
def test_unusable_answers_are_unknown(status: int, body: bytes) -> None:
    adapter = FakeAdapter((status, body))
    with _client(adapter) as client, pytest.raises(GatewayOutcomeUnknown) as err:
        _purchase(client)
    assert adapter.sent == 1
    assert err.value.http_status == status


def test_a_fail_answer_is_a_reply_not_an_exception() -> None:
    adapter = FakeAdapter((200, b'{"retCode":"FAIL","retMsg":"card not found","extra":1}'))
    with _client(adapter) as client:
        reply = client.cc_purchasewithtoken(mch_order_no="o", mch_user_id="u", card_id="c",
                                            amount=1, notify_url="https://m.test/n")  # fmt: skip
    assert (reply.ok, reply.ret_msg, reply.data) == (False, "card not found", None)


def test_queries_are_retried_with_jittered_capped_backoff_then_succeed() -> None:
    reset = requests.ConnectionError(ProtocolError("aborted", RemoteDisconnected("closed")))
    found = (200, b'{"retCode":"SUCCESS","retMsg":"","retData":{"status":2,"mchOrderNo":"o"}}')
    adapter, sleeps = FakeAdapter(reset, (502, b""), found), []
    with _client(adapter, sleeps) as client:
        reply = client.cc_query(mch_order_no="o")
    assert reply.ok and reply.data is not None and reply.data.paid
    assert adapter.sent == 3
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.4 <= sleeps[1] <= 0.8  # [d/2, d], d = 0.5 then 0.8 (cap)
    again: list[float] = []
    with _client(FakeAdapter(reset, (502, b""), found), again) as client:
        client.cc_query(mch_order_no="o")
    assert again == sleeps  # the injected Random makes the jitter reproducible


def test_queries_give_up_after_the_configured_attempts() -> None:
    adapter, sleeps = FakeAdapter((500, b"")), []
    with _client(adapter, sleeps) as client, pytest.raises(GatewayOutcomeUnknown):
        client.cc_querycard(card_id="c")
    assert adapter.sent == 3 and len(sleeps) == 2


def test_redirect_url_is_read_at_the_top_level_too() -> None:
    adapter = FakeAdapter((200, b'{"retCode":"SUCCESS","retMsg":"","redirectUrl":"https://p/x"}'))
    with _client(adapter) as client:
        reply = client.cc_addcard(card_id="c", return_url="https://m.test/r")
    assert reply.data is not None and reply.data.redirect_url == "https://p/x"


def test_the_default_session_never_retries_and_pools_per_concurrency() -> None:
    session = default_session(pool_size=32)
    adapter = session.get_adapter("https://ccapi.iotpaycloud.com/v3/")
    assert adapter.max_retries.total == 0 and adapter.max_retries.read is False  # type: ignore[attr-defined]
    assert adapter._pool_maxsize == 32  # type: ignore[attr-defined]
    assert session.verify is True
    session.close()


def test_a_closed_port_is_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = IotpayClient(base_url=f"http://127.0.0.1:{port}/v3/", mch_id="1", mch_key="k",
                          login_name="l", timeout=(1.0, 1.0))  # fmt: skip
    with client, pytest.raises(GatewayNotSent, match="NewConnectionError"):
        _purchase(client)
