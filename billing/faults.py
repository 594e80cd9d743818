"""Crash points for fault-injection tests: ``BILLING_CRASH_POINTS`` kills the process on purpose.

The exactly-once promise is that a crash at any line leaves a state the next start repairs. Tests
prove it by killing the engine with SIGKILL at random moments *and* at the named points below,
between the steps where a crash is most dangerous. Unset (always, in production) this costs one
dictionary lookup.

    BILLING_CRASH_POINTS="after_intent:0.2,after_send:0.2"  BILLING_CRASH_SEED=7

Points: ``after_intent`` (attempt committed, nothing sent), ``after_send`` (gateway answered,
nothing recorded), ``after_record`` (outcome committed), ``after_query`` (reconciliation got
the gateway's answer, recorded nothing), ``before_resend`` (an order the gateway doesn't have
is marked for resending, not yet sent), ``after_notify_store`` (notify stored, not yet
answered), ``before_notify_apply`` (notify answered, not applied).
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache


@cache
def _plan() -> tuple[dict[str, float], random.Random]:
    spec = os.environ.get("BILLING_CRASH_POINTS", "")
    points: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, chance = item.partition(":")
        points[name] = float(chance or 1)
    seed = os.environ.get("BILLING_CRASH_SEED")
    return points, random.Random(int(seed) if seed else None)


def crashpoint(name: str) -> None:
    """Die here, as by ``kill -9``, if the environment asks for it."""
    points, dice = _plan()
    if points and name in points and dice.random() < points[name]:
        os.kill(os.getpid(), signal.SIGKILL)
