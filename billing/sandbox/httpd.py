"""A small threaded HTTP/1.1 server base for the sandbox and the test notify receiver.

Why the standard library and not uvicorn: the sandbox must be able to *drop* a connection after
charging, that is close the socket with no response at all, which an ASGI app cannot express. A
thread per keep-alive connection is fast enough here (a few thousand requests per second on
loopback), and the server tracks open connections so ``stop`` can close idle keep-alive sockets
and join every thread instead of leaking them (pytest runs with warnings as errors).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LoopbackServer", "QuietHandler"]

log = logging.getLogger(__name__)


class LoopbackServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that knows its open connections and runs in a daemon thread."""

    daemon_threads = True
    block_on_close = True
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal here (timeouts, dropped connections):
        log it at debug level instead of printing a traceback to stderr."""
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def start(self, name: str) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, name=name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, wake every handler blocked on an idle keep-alive socket, join all."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
            self._thread = None
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler that writes each response in one ``sendall`` (no Nagle stall
    between headers and body) and logs nothing to stderr."""

    protocol_version = "HTTP/1.1"
    server_version = "iotpay-sandbox"
    sys_version = ""
    timeout = 600  # idle keep-alive connections are closed after ten minutes

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default access log; the sandbox keeps its own request counters."""

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json;charset=UTF-8",
        headers: dict[str, str] | None = None,
        close: bool = False,
    ) -> None:
        """Send a complete response in one write."""
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}",
                 f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]  # fmt: skip
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if close:
            lines.append("Connection: close")
            self.close_connection = True
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def drop(self) -> None:
        """Close the connection without sending a byte: the client sees the socket close."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
