"""HTTP routing for the sandbox: ``/v3/`` gateway calls with their fault injection, the hosted
``/cc/`` pages, and ``/admin/``.

The order of events on a ``/v3/`` call is the point of this module: count the request, sleep the
configured latency, maybe answer 500 *before* processing, process (charge and queue notifies),
then maybe drop the connection or answer 502 *after* processing, else answer 200 with JSON.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from billing.sandbox import pages
from billing.sandbox.admin import handle_admin
from billing.sandbox.core import Sandbox
from billing.sandbox.httpd import LoopbackServer, QuietHandler

__all__ = ["SandboxHTTPServer"]

_HTML = "text/html; charset=utf-8"
_ERROR_500 = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
_ERROR_502 = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


class SandboxHTTPServer(LoopbackServer):
    def __init__(self, address: tuple[str, int], core: Sandbox) -> None:
        super().__init__(address, _Handler)
        self.core = core


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Handler(QuietHandler):
    @property
    def core(self) -> Sandbox:
        return cast(SandboxHTTPServer, self.server).core

    def root_url(self) -> str:
        server = cast(SandboxHTTPServer, self.server)
        host = self.headers.get("Host") or f"{server.server_name}:{server.port}"
        return f"http://{host}"

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        body = self.read_body()
        if parts.path.startswith("/v3/"):
            self._gateway(parts.path.removeprefix("/v3/"), body)
        elif parts.path in ("/cc/addcard", "/cc/purchase"):
            self._hosted_post(parts.path.removeprefix("/cc/"), parts.query, body)
        elif parts.path.startswith("/admin/"):
            self._admin("POST", parts.path, body)
        else:
            self.reply(404, b"not found", "text/plain")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path in ("/cc/addcard", "/cc/purchase"):
            self._hosted_get(parts.path.removeprefix("/cc/"), parts.query)
        elif parts.path.startswith("/admin/"):
            self._admin("GET", parts.path, b"")
        else:
            self.reply(404, b"not found", "text/plain")

    def _gateway(self, endpoint: str, raw: bytes) -> None:
        core = self.core
        fields = core.parse(raw)
        core.count(endpoint, fields)
        if not core.known_endpoint(endpoint):
            self.reply(404, b"not found", "text/plain")
            return
        faults = core.faults
        if faults.latency_ms and faults.applies_to(endpoint):
            time.sleep(faults.latency_ms / 1000)
        if core.dice.roll_http("error_500_rate", endpoint):
            self.reply(500, _ERROR_500, _HTML)
            return
        answer = core.process(endpoint, fields, self.root_url())
        if core.dice.roll_http("drop_after_charge_rate", endpoint):
            self.drop()
        elif core.dice.roll_http("error_502_after_charge_rate", endpoint):
            self.reply(502, _ERROR_502, _HTML, close=True)
        else:
            self.reply(200, _json(answer))

    def _hosted_get(self, kind: str, query: str) -> None:
        key = parse_qs(query).get("key", [""])[0]
        session = self.core.processor.session(key, kind)
        if session is None:
            self.reply(410, pages.expired_page(), _HTML)
        else:
            self.reply(200, pages.form_page(kind, key, session.fields), _HTML)

    def _hosted_post(self, kind: str, query: str, raw: bytes) -> None:
        key = parse_qs(query).get("key", [""])[0]
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        location, (_, jobs) = self.core.processor.submit_hosted(key, kind, form)
        self.core.notifier.submit(jobs)
        if location is None:
            self.reply(410, pages.expired_page(), _HTML)
        else:
            self.reply(303, b"", "text/plain", headers={"Location": location})

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        body = self.core.parse(raw) if raw.strip() else {}
        if body is None:
            status, answer = 400, {"error": "body must be a JSON object"}
        else:
            status, answer = handle_admin(self.core, method, path, body)
        self.reply(status, _json(answer))
