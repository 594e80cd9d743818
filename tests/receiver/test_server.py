"""``ReceiverServer``: uvicorn in a thread, on a free port, stopped gracefully."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests
from fastapi import BackgroundTasks, FastAPI

from billing.receiver import ReceiverServer


def finish_slowly(done: threading.Event) -> None:
    time.sleep(0.3)
    done.set()


def tiny_app(done: threading.Event | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    def ping(background: BackgroundTasks) -> dict[str, str]:
        if done is not None:
            background.add_task(finish_slowly, done)
        return {"pong": "yes"}

    return app


def test_port_0_picks_a_free_port_known_before_start() -> None:
    server = ReceiverServer(host="127.0.0.1", port=0)
    url = server.bind()
    assert server.port > 0 and url == f"http://127.0.0.1:{server.port}"
    server.app = tiny_app()
    with server, requests.Session() as http:
        assert server.url == url
        assert http.get(url + "/ping", timeout=5).json() == {"pong": "yes"}
    with pytest.raises(requests.ConnectionError), requests.Session() as http:
        http.get(url + "/ping", timeout=5)


def test_two_servers_run_side_by_side_and_leave_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with ReceiverServer(tiny_app()) as one, ReceiverServer(tiny_app()) as two:
        assert one.port != two.port
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
        with requests.Session() as http:
            for server in (one, two):
                assert http.get(server.url + "/ping", timeout=5).status_code == 200
    assert threading.active_count() < 50


def test_stop_waits_for_background_tasks() -> None:
    done = threading.Event()
    server = ReceiverServer(tiny_app(done)).start()
    with requests.Session() as http:
        assert http.get(server.url + "/ping", timeout=5).status_code == 200
    server.stop()
    assert done.is_set()
    assert not any(t.name.startswith("receiver-") for t in threading.enumerate())


def test_start_needs_an_app_and_stop_is_idempotent() -> None:
    server = ReceiverServer()
    server.bind()
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()  # closes the bound socket
    server.stop()
