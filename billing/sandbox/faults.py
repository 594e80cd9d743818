"""Fault switches: the failures the engine must survive, on demand and reproducible from a seed.

HTTP faults (apply to ``/v3/`` calls, or only to the endpoints listed in ``endpoints``):
- ``latency_ms``: sleep before processing (with a short client read timeout: a read timeout
  whose charge lands after the client gave up);
- ``error_500_rate``: answer 500 *before* processing: nothing happened, but the client cannot know;
- ``drop_after_charge_rate``: process (charge), then close the socket with no HTTP response;
- ``error_502_after_charge_rate``: process, then answer 502 as a failing proxy would.

Notify faults: ``duplicate_notify_rate`` (a second copy, delivered even after ``SUCCESS``),
``delayed_notify_rate`` (first attempt ``notify_delay_ms`` late), ``reorder_notify_rate`` (held
back until the next notify has gone out), ``forged_notify_rate`` (a copy with a changed amount and
a bad sign, sent once, alongside the real one).

Every roll draws one number from a seeded ``random.Random`` (one stream for HTTP, one for notifies)
whatever the rate, so one seed and one sequence of calls give the same faults every run.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from billing.errors import InvalidInput

__all__ = ["FaultDice", "Faults", "HttpFault", "NotifyFault"]

Rate = float
HttpFault = Literal["error_500_rate", "drop_after_charge_rate", "error_502_after_charge_rate"]
NotifyFault = Literal[
    "duplicate_notify_rate", "delayed_notify_rate", "reorder_notify_rate", "forged_notify_rate"
]


def _rate() -> Any:
    return Field(0.0, ge=0.0, le=1.0)


class Faults(BaseModel):
    """The current fault settings; all off by default. JSON uses camelCase (``error500Rate``)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    latency_ms: int = Field(0, ge=0, le=120_000)
    error_500_rate: Rate = _rate()
    drop_after_charge_rate: Rate = _rate()
    error_502_after_charge_rate: Rate = _rate()
    duplicate_notify_rate: Rate = _rate()
    delayed_notify_rate: Rate = _rate()
    notify_delay_ms: int = Field(500, ge=0, le=3_600_000)
    reorder_notify_rate: Rate = _rate()
    forged_notify_rate: Rate = _rate()
    endpoints: tuple[str, ...] = ()

    def applies_to(self, endpoint: str) -> bool:
        return not self.endpoints or endpoint in self.endpoints


def _where(loc: tuple[int | str, ...]) -> str:
    return to_camel(str(loc[0])) if loc else "faults"


class FaultDice:
    """Thread-safe holder of ``Faults`` plus the seeded random streams that decide each roll."""

    def __init__(self, faults: Faults | None = None, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._seed = seed
        self._http = random.Random(f"{seed}:http") if seed is not None else random.Random()
        self._notify = random.Random(f"{seed}:notify") if seed is not None else random.Random()

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    def update(self, changes: dict[str, Any]) -> Faults:
        """Merge ``changes`` (snake_case or camelCase) into the current faults; ``seed`` reseeds."""
        names = {field.alias: name for name, field in Faults.model_fields.items()}
        named = {names.get(key, key): value for key, value in changes.items()}
        seed = named.pop("seed", None)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise InvalidInput("invalid fault settings: seed must be an integer")
        with self._lock:
            try:
                self._faults = Faults.model_validate({**self._faults.model_dump(), **named})
            except ValidationError as exc:
                problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors())
                raise InvalidInput(f"invalid fault settings: {problems}") from None
        if seed is not None:
            self.reseed(seed)
        return self.faults

    def reset(self) -> None:
        with self._lock:
            self._faults = Faults()
        self.reseed(self._seed)

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._seed = seed
            self._http = random.Random(f"{seed}:http") if seed is not None else random.Random()
            self._notify = random.Random(f"{seed}:notify") if seed is not None else random.Random()

    def roll_http(self, fault: HttpFault, endpoint: str) -> bool:
        with self._lock:
            draw = self._http.random()
            rate: float = getattr(self._faults, fault)
            return self._faults.applies_to(endpoint) and draw < rate

    def roll_notify(self, fault: NotifyFault) -> bool:
        with self._lock:
            draw = self._notify.random()
            rate: float = getattr(self._faults, fault)
            return draw < rate
