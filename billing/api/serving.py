"""The engine's HTTP listeners: the public one (API, notifies, browser returns) and, when
``BILLING_INTERNAL_PORT`` is set, an internal one for ``/healthz`` and ``/metrics``.

``billing serve`` and ``billing daemon`` start and stop them together as one ``HttpServers``.
"""

from __future__ import annotations

from typing import Self

from billing.api.context import ApiContext
from billing.bootstrap import Runtime
from billing.documents.merchant import merchant_from_settings
from billing.metrics import Metrics
from billing.receiver.app import create_app, create_ops_app
from billing.receiver.server import ReceiverServer


class HttpServers:
    """One or two ``ReceiverServer``; ``url`` is the public one's."""

    def __init__(self, public: ReceiverServer, internal: ReceiverServer | None = None) -> None:
        self.public, self.internal = public, internal

    @property
    def url(self) -> str:
        return self.public.url

    @property
    def internal_url(self) -> str | None:
        return self.internal.url if self.internal is not None else None

    def start(self) -> Self:
        if self.internal is not None:
            self.internal.start()
        try:
            self.public.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.public.stop()
        if self.internal is not None:
            self.internal.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http_servers(rt: Runtime) -> HttpServers:
    """The listeners a runtime's settings ask for, not started yet."""
    deps, settings = rt.deps, rt.settings
    metrics = deps.metrics if isinstance(deps.metrics, Metrics) else Metrics(deps.store,
                                                                              deps.clock)
    apart = settings.internal_port is not None
    api = ApiContext(deps, merchant_from_settings(settings), settings.timezone)
    app = create_app(deps, mch_id=rt.merchant.mch_id, mch_key=rt.merchant.key, metrics=metrics,
                     api=api, serve_ops=not apart)
    public = ReceiverServer(app, host=settings.http_host, port=settings.http_port)
    internal = None
    if settings.internal_port is not None:
        internal = ReceiverServer(create_ops_app(deps, metrics), host=settings.internal_host,
                                  port=settings.internal_port)
    return HttpServers(public, internal)
