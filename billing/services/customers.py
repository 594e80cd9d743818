"""Adding and finding customers: the merchant's id, contact details, locale and timezone."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import func, select

from billing.clock import Clock
from billing.domain.calendar import zone
from billing.domain.taxes import check_province
from billing.errors import Conflict, InvalidInput, NotFound
from billing.gateway.masking import redact_pans
from billing.services.events import record_event
from billing.store.models import MAX_ROW_ID, Customer
from billing.store.uow import UnitOfWork

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
ENGINE_REF = re.compile(r"#([0-9]+)")
"""``#7``: a customer named by the engine's id rather than the merchant's."""


class NewCustomer(BaseModel):
    """What a merchant gives to create a customer; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: str = Field(min_length=1, max_length=64)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    locale: Literal["en", "fr"] = "en"
    timezone: str
    province: str | None = None
    """Where the customer is taxed, when the catalog has ``taxes:``; none: never taxed."""

    @field_validator("province", mode="before")
    @classmethod
    def _province(cls, value: object) -> object:
        if value is None or not isinstance(value, str):
            return value
        try:
            return check_province(value)
        except InvalidInput as exc:
            raise ValueError(str(exc).removeprefix("province ")) from None

    @field_validator("external_id", mode="before")
    @classmethod
    def _plain_id(cls, value: object) -> object:
        """Refuse ids that would name someone else or hide what they are.

        ``#7`` is how every command names the customer whose *engine* id is 7, so an external id
        ``#7`` would send that customer's charges and cards to another one. Whitespace and control
        or format characters (ANSI escapes, zero-width or right-to-left marks) make ids that look
        alike on screen but differ, or change what a terminal shows. Checked before the model
        strips whitespace, so ``" cus_1"`` is refused rather than silently becoming ``cus_1``.
        """
        if not isinstance(value, str):
            return value
        if value.startswith("#"):
            raise ValueError("must not start with '#' (#N names a customer by the engine's id)")
        if any(ch.isspace() for ch in value):
            raise ValueError("must not contain whitespace")
        if any(unicodedata.category(ch).startswith("C") for ch in value):
            raise ValueError("must not contain control or invisible characters")
        if redact_pans(value) != value:
            # 12 to 19 digits in a row look like a card number, and card numbers are never
            # stored: a merchant who typed one here meant the card, not the customer.
            raise ValueError("must not contain a run of 12 or more digits (it looks like a "
                             "card number, which is never stored)")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value


def _input_error(exc: ValidationError) -> InvalidInput:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    messages = {
        "string_pattern_mismatch": "is not a valid email address",
        "literal_error": f"must be one of {err.get('ctx', {}).get('expected', '')}",
        "string_too_short": "must not be empty",
    }
    msg = messages.get(err["type"], str(err["msg"]).removeprefix("Value error, "))
    return InvalidInput(f"{field}: {msg} (got {err.get('input')!r})")


@dataclass(frozen=True)
class CustomerView:
    id: int
    external_id: str
    email: str
    name: str
    locale: str
    timezone: str
    credit_balance: int
    created_at: str
    province: str | None = None

    @classmethod
    def of(cls, row: Customer) -> CustomerView:
        return cls(row.id, row.external_id, row.email, row.name, row.locale, row.timezone,
                   row.credit_balance, row.created_at.isoformat(), row.province)


def add_customer(uow: UnitOfWork, clock: Clock, **fields: str | None) -> CustomerView:
    """Validate and store a new customer; a duplicate merchant id is a ``Conflict``."""
    try:
        data = NewCustomer(**fields)
    except ValidationError as exc:
        raise _input_error(exc) from None
    session = uow.session
    if session.scalar(select(Customer.id).where(Customer.external_id == data.external_id)):
        raise Conflict(f"a customer with id {data.external_id!r} already exists")
    now = clock.now()
    row = Customer(**data.model_dump(), credit_balance=0, created_at=now)
    session.add(row)
    session.flush()
    record_event(session, now, "customer.created", customer_id=row.id,
                 external_id=row.external_id)
    uow.commit()
    return CustomerView.of(row)


def find_customer(uow: UnitOfWork, ref: str) -> Customer:
    """By the merchant's id (``cus_42``), or by the engine's numeric id written ``#7``.

    Only ASCII digits make an engine id (``str.isdigit`` also accepts '²' and '١'), and one too
    large for the id column names no customer: it is not found, rather than failing in the driver.
    """
    session = uow.session
    engine_id = ENGINE_REF.fullmatch(ref)
    if engine_id is not None:
        digits = engine_id.group(1)  # int() of over 4300 digits raises, so the length first
        fits = len(digits) <= 20 and int(digits) <= MAX_ROW_ID
        row = session.get(Customer, int(digits)) if fits else None
    else:
        row = session.scalar(select(Customer).where(Customer.external_id == ref))
    if row is None:
        raise NotFound(f"no customer {ref!r}")
    return row


def list_customers(uow: UnitOfWork, *, limit: int = 100, offset: int = 0) -> list[CustomerView]:
    rows = uow.session.scalars(select(Customer).order_by(Customer.id).limit(limit).offset(offset))
    return [CustomerView.of(r) for r in rows]


def count_customers(uow: UnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count(Customer.id))) or 0)
