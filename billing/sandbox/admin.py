"""``/admin/`` JSON endpoints: the sandbox's ledger, notify log, faults, clock and reset over HTTP,
for a sandbox running in another process (``billing sandbox``). No authentication: the sandbox
holds test data only and listens on loopback by default.

    GET  /admin/health            {"ok": true, "merchants": [...]}
    GET  /admin/ledger            orders, charges[mchId][mchOrderNo], totalCharges
    GET  /admin/notifies          every delivery attempt
    GET  /admin/requests          requests received, by endpoint and reference
    GET  /admin/faults            current fault switches
    POST /admin/faults            change some: {"error500Rate": 0.1, "seed": 7}; {"clear": true}
    GET  /admin/clock             {"now": iso}
    POST /admin/clock             {"at": iso} or {"advanceSeconds": n}
    POST /admin/reset             forget orders, cards, notifies, counters and faults
    POST /admin/wait-idle         {"timeout": s} -> {"idle": bool} once no notify is pending
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from billing.domain.timeutil import parse_instant
from billing.errors import UserError
from billing.sandbox.core import Sandbox

__all__ = ["handle_admin"]

Json = dict[str, Any]


def handle_admin(core: Sandbox, method: str, path: str, body: Json) -> tuple[int, Json]:
    """Route one admin call; ``(HTTP status, JSON)``. Bad input is a 400 that changes nothing."""
    route = _ROUTES.get((method, path.rstrip("/")))
    if route is None:
        return 404, {"error": f"no admin endpoint {method} {path}"}
    try:
        return 200, route(core, body)
    except UserError as exc:
        return 400, {"error": str(exc)}
    except (TypeError, ValueError) as exc:
        return 400, {"error": f"invalid request: {type(exc).__name__}"}


def _health(core: Sandbox, body: Json) -> Json:
    return {"ok": True, "merchants": sorted(core.merchants)}


def _ledger(core: Sandbox, body: Json) -> Json:
    return core.ledger().to_json()


def _notifies(core: Sandbox, body: Json) -> Json:
    return {"attempts": [a.to_json() for a in core.notify_log()]}


def _requests(core: Sandbox, body: Json) -> Json:
    return {"requests": core.request_counts()}


def _faults(core: Sandbox, body: Json) -> Json:
    return core.faults.model_dump(by_alias=True)


def _set_faults(core: Sandbox, body: Json) -> Json:
    changes = dict(body)
    if changes.pop("clear", False):
        core.clear_faults()
    core.set_faults(**changes)
    return _faults(core, body)


def _clock(core: Sandbox, body: Json) -> Json:
    return {"now": core.clock.now().isoformat()}


def _set_clock(core: Sandbox, body: Json) -> Json:
    if "at" in body:
        core.set_clock(parse_instant(str(body["at"])))
    elif "advanceSeconds" in body:
        core.advance_clock(timedelta(seconds=float(body["advanceSeconds"])))
    else:
        raise ValueError("give at or advanceSeconds")
    return _clock(core, body)


def _reset(core: Sandbox, body: Json) -> Json:
    core.reset()
    return {"ok": True}


def _wait_idle(core: Sandbox, body: Json) -> Json:
    timeout = min(float(body.get("timeout", 10.0)), 300.0)
    return {"idle": core.wait_for_notifies(timeout)}


_ROUTES = {
    ("GET", "/admin/health"): _health,
    ("GET", "/admin/ledger"): _ledger,
    ("GET", "/admin/notifies"): _notifies,
    ("GET", "/admin/requests"): _requests,
    ("GET", "/admin/faults"): _faults,
    ("POST", "/admin/faults"): _set_faults,
    ("GET", "/admin/clock"): _clock,
    ("POST", "/admin/clock"): _set_clock,
    ("POST", "/admin/reset"): _reset,
    ("POST", "/admin/wait-idle"): _wait_idle,
}
