"""Prototypes of performance proposals, installed for one benchmark run to measure them.

The prototypes behind bench/README.md's before/after figures (``pipeline``, ``preload``,
``intent-flush``, ``lean-record``, ``group-record``, ``no-trust-env``) are all in the engine now
(commit d77ef8d and after); their prototype code was written against functions that no longer
exist and is kept in git history (``git show e1679f5:bench/variants.py``), not here. They are
still accepted as names so old command lines say why instead of failing.

``billing_day.py --variant NAME`` installs a variant by replacing an attribute at run time, for
that run only; nothing under ``billing/`` changes.

* ``no-pre-ping``: the pool stops sending a ping on every checkout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from billing.services.ports import Deps

NAMES = ("pipeline", "preload", "intent-flush", "lean-record", "group-record", "no-trust-env",
         "no-pre-ping")
_IN_ENGINE = frozenset(NAMES) - {"no-pre-ping"}

Patch = tuple[Any, str, Any]


def superseded(name: str) -> str | None:
    """Why the prototype ``name`` must not be applied to this engine, or None if it may."""
    if name in _IN_ENGINE:
        return "already in the engine (billing/services/collection.py, billing/gateway/client.py)"
    return None


def patches(names: Sequence[str], deps: Deps) -> list[Patch]:
    return [(deps.store.engine.pool, "_pre_ping", False)] if "no-pre-ping" in names else []


@contextlib.contextmanager
def installed(names: Sequence[str], deps: Deps) -> Iterator[None]:
    """Apply the named variants for the duration of the block, then restore everything."""
    unknown = set(names) - set(NAMES)
    if unknown:
        raise ValueError(f"unknown variants {sorted(unknown)}; known: {', '.join(NAMES)}")
    stale = {n: why for n in names if (why := superseded(n)) is not None}
    if stale:
        raise ValueError("these prototypes are superseded by the engine itself: "
                         + "; ".join(f"{n}: {why}" for n, why in stale.items()))
    saved: list[Patch] = []
    try:
        for target, attr, value in patches(names, deps):
            saved.append((target, attr, getattr(target, attr)))
            setattr(target, attr, value)
        yield
    finally:
        for target, attr, value in reversed(saved):
            setattr(target, attr, value)
