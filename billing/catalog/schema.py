"""The YAML schema of plan files, as pydantic models with ``extra="forbid"``.

Every field here must be documented in docs/plans.md; a test walks these models and fails when one
is missing there. Amounts are integer minor units or exact decimal strings; floats are refused.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from billing.domain.money import MAX_CHARGE, Money, max_charge
from billing.domain.taxes import check_province, format_percent, parse_percent
from billing.domain.timeutil import format_duration, parse_duration
from billing.errors import InvalidInput

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=40)]


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"must be a duration like 3d or 12h (got {value!r})")
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntervalSpec(StrictModel):
    """How long one billing period is: ``count`` times ``unit``."""

    unit: Literal["day", "week", "month", "year"]
    count: int = Field(default=1, ge=1, le=36)


class DunningStepSpec(StrictModel):
    """An email sent once the oldest unpaid invoice is ``after`` old."""

    after: Duration
    email: Literal["payment_failed", "reminder", "final_notice"]


class FinalActionSpec(StrictModel):
    """What happens to the subscription when dunning gives up."""

    after: Duration
    action: Literal["cancel", "mark_unpaid", "leave_past_due"]
    last_try: bool = False


class DunningPolicySpec(StrictModel):
    """A named escalation plans refer to by ``dunning_policy``."""

    name: Slug
    description: str = ""
    steps: list[DunningStepSpec] = Field(default_factory=list)
    final_action: FinalActionSpec

    @field_validator("steps")
    @classmethod
    def _steps_sorted(cls, steps: list[DunningStepSpec]) -> list[DunningStepSpec]:
        afters = [s.after for s in steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in increasing order of 'after'")
        return steps


def _amount(value: Any, info: ValidationInfo) -> int | None:
    if value is None:
        return None
    currency = info.data.get("currency", "CAD")
    try:
        amount = Money.parse(value, currency)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None
    if amount.amount > MAX_CHARGE:
        # No subscription to such a plan could ever be charged; say so when the plan is written.
        raise ValueError(f"{amount} is more than the {max_charge(currency)} the gateway can "
                         "charge in one payment")
    return amount.amount


class PlanSpec(StrictModel):
    """One sellable plan."""

    code: Slug
    name: str = Field(min_length=1, max_length=80)
    description: str = ""
    currency: Literal["CAD"] = "CAD"
    price: int = Field(ge=0)
    interval: IntervalSpec
    trial_days: int = Field(default=0, ge=0, le=730)
    setup_fee: int | None = Field(default=None, ge=0)
    retry_schedule: list[Duration] = Field(default_factory=list, max_length=20)
    dunning_policy: Slug
    migration: Literal["grandfather", "at_renewal"] = "grandfather"

    _price = field_validator("price", "setup_fee", mode="before")(_amount)

    @field_validator("retry_schedule")
    @classmethod
    def _retries_sorted(cls, schedule: list[timedelta]) -> list[timedelta]:
        for earlier, later in pairwise(schedule):
            if later <= earlier:
                raise ValueError(
                    "must be strictly increasing offsets from the first failure "
                    f"(got {_show(later)} after {_show(earlier)})"
                )
        return schedule


def _show(delta: timedelta) -> str:
    return format_duration(delta)


def _rate(value: Any) -> str:
    try:
        return format_percent(parse_percent(value))
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


def _province(value: Any) -> str:
    if value is True:
        raise ValueError('got true: YAML reads an unquoted ON as true; write "ON" in quotes')
    if not isinstance(value, str) or value != value.strip().upper():
        raise ValueError(f"must be a two-letter province code in capitals like QC (got {value!r})")
    try:
        return check_province(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


class TaxSpec(StrictModel):
    """A named sales tax at one rate, charged to customers of the listed provinces."""

    name: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z][A-Za-z0-9 .-]*$")
    rate: Annotated[str, BeforeValidator(_rate)]
    """The percent, exact: kept as the decimal string ``parse_percent`` read."""
    provinces: list[Annotated[str, BeforeValidator(_province)]] = Field(min_length=1)

    @field_validator("provinces")
    @classmethod
    def _once_each(cls, provinces: list[str]) -> list[str]:
        repeated = sorted({p for p in provinces if provinces.count(p) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return provinces


class PlanFile(StrictModel):
    """One YAML file of the catalog: any mix of plans, dunning policies and taxes."""

    plans: list[PlanSpec] = Field(default_factory=list)
    dunning_policies: list[DunningPolicySpec] = Field(default_factory=list)
    taxes: list[TaxSpec] = Field(default_factory=list)
