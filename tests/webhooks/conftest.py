"""Webhook fixtures: a real HTTP receiver (stdlib ``http.server`` in a thread) that records every
request and answers from a script, the CLI in-process, and helpers to add endpoints.

The receiver binds port 0 so parallel runs never collide; each path is one "app" whose answers
are scripted (``answers["/a"] = [500, 200]``: first 500, then 200, then 200 for ever).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from billing.cli.app import main
from billing.clock import FixedClock
from billing.services.webhooks import EndpointView, add_endpoint, deliver_due
from billing.store.engine import Store
from billing.webhooks import verify
from tests.engine.conftest import world  # noqa: F401  (the sandbox-backed engine fixture)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What the merchant's app got, per path, and what it answers next."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    """Seconds a path waits before answering (real time: only for timeout tests)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str) -> int:
        with self.lock:
            script = self.answers.get(path, [])
            return script.pop(0) if len(script) > 1 else (script[0] if script else 200)

    def record(self, request: Received) -> None:
        with self.lock:
            self.requests.append(request)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            receiver.record(Received(self.path, dict(self.headers.items()), body))
            time.sleep(receiver.delays.get(self.path, 0.0))
            status = receiver.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """A URL nothing listens on: connection refused, at once."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


def endpoint(store: Store, clock: FixedClock, url: str, *events: str) -> EndpointView:
    return add_endpoint(store, clock.now(), url, list(events))


def send(store: Store, clock: FixedClock) -> Any:
    """One pass of the webhook tick at the clock's time."""
    return deliver_due(store, clock, worker="test")


def verified(secret: str, request: Received, clock: FixedClock) -> dict[str, Any]:
    """The request's JSON, after checking its signature as a merchant's app would."""
    verify(secret, request.headers["Billing-Signature"], request.body,
           now=clock.now().timestamp())
    data: dict[str, Any] = request.json()
    return data


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path, db_url: str) -> Callable[..., Result]:
    """The CLI in-process against the test database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BILLING_CONFIG", raising=False)
    monkeypatch.setenv("BILLING_DATABASE_URL", db_url)

    def _run(*args: str) -> Result:
        code = main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run
