"""``SandboxServer``: the sandbox on a real loopback socket, in a daemon thread of this process.

    with SandboxServer(clock=FixedClock(at)) as sandbox:
        client = sandbox.client()                      # an IotpayClient for the first merchant
        client.cc_directaddcard(card_id="c1", card_num=cards.APPROVE, ...)
        sandbox.wait_for_notifies()
        assert sandbox.ledger().charges("order-1") == 1

Port 0 (the default) picks a free port; ``base_url`` ends in ``/v3/``. A ticker thread settles
pending orders whose time has come on the sandbox clock. ``stop`` closes every socket and joins
every thread, so tests under ``-W error`` see no ResourceWarning.
"""

from __future__ import annotations

import threading
from typing import Any, Self

from billing.gateway.client import IotpayClient
from billing.sandbox.core import Sandbox
from billing.sandbox.merchants import Merchant
from billing.sandbox.web import SandboxHTTPServer

__all__ = ["SandboxServer"]


class SandboxServer(Sandbox):
    """A ``Sandbox`` listening on ``host:port``; start/stop or use as a context manager."""

    def __init__(self, *args: Any, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host = host
        self.port = port
        self._http: SandboxHTTPServer | None = None
        self._ticking = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the engine uses as ``IOTPAY_BASE_URL``."""
        return f"{self.root_url}/v3/"

    def start(self) -> Self:
        if self._http is not None:
            return self
        self._http = SandboxHTTPServer((self.host, self.port), self)
        self.port = self._http.port
        self.notifier.start()
        self._http.start(name=f"sandbox-http-{self.port}")
        self._ticking.clear()
        self._ticker = threading.Thread(target=self._tick, name="sandbox-ticker", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        self._ticking.set()
        if self._ticker is not None:
            self._ticker.join()
        self._http.stop()
        self.notifier.stop()
        self._http = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        while not self._ticking.wait(0.2):
            self.settle_due()

    def client(self, merchant: Merchant | None = None, **kwargs: Any) -> IotpayClient:
        """An ``IotpayClient`` for ``merchant`` (default: the first configured); close it after."""
        m = merchant or next(iter(self.merchants.values()))
        return IotpayClient(
            base_url=self.base_url,
            mch_id=m.mch_id,
            mch_key=m.key,
            login_name=m.login_name,
            **kwargs,
        )
