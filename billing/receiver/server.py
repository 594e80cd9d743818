"""``ReceiverServer``: uvicorn in a daemon thread, for tests and for embedding in the daemon.

    server = ReceiverServer(host="127.0.0.1", port=0)
    url = server.bind()                      # the port is known before the app exists...
    server.app = create_app(Deps(..., EngineConfig(public_url=url)), ...)
    with server:                             # ...and start() blocks until it is listening
        ...

Why a socket of our own: binding before the app exists lets the app's ``public_url`` (hence
every ``notifyUrl`` and ``returnUrl``) contain the real port when port 0 asked for a free one.
uvicorn installs signal handlers only in the main thread (``Server.capture_signals`` checks
``threading.main_thread()``), so running it in another thread leaves the process's Ctrl-C and
SIGTERM handling alone. ``log_config=None`` keeps uvicorn from reconfiguring the process's
logging; access logs are off unless asked for. ``stop`` asks uvicorn to exit, which closes the
listening socket and idle keep-alive connections, waits for running background tasks (up to
``graceful_timeout``) and joins the thread, so pytest under ``-W error`` sees nothing leak.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ReceiverServer"]


class ReceiverServer:
    """One uvicorn server on ``host:port`` (0: a free port), started and stopped explicitly or
    used as a context manager."""

    def __init__(self, app: ASGIApp | None = None, host: str = "127.0.0.1", port: int = 0, *,
                 access_log: bool = False, startup_timeout: float = 10.0,
                 graceful_timeout: float = 5.0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.access_log = access_log
        self.startup_timeout = startup_timeout
        self.graceful_timeout = graceful_timeout
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` with the real port once bound."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def bind(self) -> str:
        """Reserve the address now (idempotent) and return ``url``; connections are accepted
        only after ``start``."""
        if self._socket is None:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
            except OSError:
                sock.close()
                raise
            self._socket = sock
            self.port = int(sock.getsockname()[1])
        return self.url

    def start(self) -> Self:
        """Serve ``app`` in a daemon thread; returns once it accepts connections."""
        if self._thread is not None:
            return self
        if self.app is None:
            raise RuntimeError("ReceiverServer.start: set .app first")
        self.bind()
        assert self._socket is not None
        config = uvicorn.Config(
            self.app, log_config=None, access_log=self.access_log, lifespan="off",
            timeout_graceful_shutdown=int(self.graceful_timeout) or 1, server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, args=([self._socket],),
                                        name=f"receiver-{self.port}", daemon=True)
        self._thread.start()
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the receiver did not start on {self.url}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Graceful shutdown, then join; idempotent. A bound but unstarted socket is closed."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(self.graceful_timeout + 2)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join()
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
