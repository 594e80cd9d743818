"""Bodies of customers, cards and subscriptions.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    JsonValue,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from billing.api.limits import MAX_QUANTITY
from billing.api.schemas.base import Amount, Request
from billing.services import merchant_api
from billing.services.cards import CardView
from billing.services.customers import CustomerView
from billing.services.subscriptions import ChangePreview

# -- customers and cards ------------------------------------------------------------------------

class CustomerCreate(Request):
    external_id: str = Field(min_length=1, max_length=64, description="Your id for them.")
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    locale: Literal["en", "fr"] = "en"
    timezone: str | None = Field(None, min_length=1, max_length=64,
                                 description="IANA zone; default: BILLING_TIMEZONE.")
    province: str | None = Field(None, min_length=2, max_length=2)


class CustomerOut(BaseModel):
    id: int
    external_id: str
    email: str
    name: str
    locale: str
    timezone: str
    province: str | None
    credit_balance: int = Field(description="Credit owed to the customer, minor units.")
    created_at: datetime

    @classmethod
    def of(cls, view: CustomerView) -> CustomerOut:
        return cls(id=view.id, external_id=view.external_id, email=view.email, name=view.name,
                   locale=view.locale, timezone=view.timezone, province=view.province,
                   credit_balance=view.credit_balance,
                   created_at=datetime.fromisoformat(view.created_at))


class CardOut(BaseModel):
    card_id: str
    customer: str
    status: str
    number: str | None = Field(description="Masked: 625094******0014.")
    type: str | None
    expiry: str | None
    holder: str | None

    @classmethod
    def of(cls, view: CardView) -> CardOut:
        return cls(card_id=view.card_id, customer=view.customer, status=view.status,
                   number=view.number, type=view.type, expiry=view.expiry, holder=view.holder)


class CardSetupOut(BaseModel):
    card: CardOut
    redirect_url: str = Field(description="The gateway's hosted card page: send the customer.")


NUMBER_SHAPE: dict[str, JsonValue] = {"minLength": 12, "maxLength": 23, "pattern": "^[0-9 ]+$"}
CVV_SHAPE: dict[str, JsonValue] = {"minLength": 3, "maxLength": 4, "pattern": "^[0-9]+$"}


class CardDirectCreate(Request):
    """For PCI DSS merchants only; the number and CVV go to the gateway and nowhere else."""

    number: SecretStr = Field(json_schema_extra=NUMBER_SHAPE)
    cvv: SecretStr = Field(json_schema_extra=CVV_SHAPE)
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])[0-9]{2}$", description="MMYY")
    holder: str = Field(min_length=1, max_length=64)

    @field_validator("number", "cvv")
    @classmethod
    def _shape(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        """The declared shape, checked here because pydantic's own constraints don't apply to
        ``SecretStr``; the message never repeats the value."""
        shape = NUMBER_SHAPE if info.field_name == "number" else CVV_SHAPE
        text = value.get_secret_value()
        if not (int(str(shape["minLength"])) <= len(text) <= int(str(shape["maxLength"]))
                and re.fullmatch(str(shape["pattern"]), text)):
            raise ValueError(f"must be {shape['minLength']} to {shape['maxLength']} digits")
        return value


# -- subscriptions ------------------------------------------------------------------------------

class SubscriptionCreate(Request):
    customer: str = Field(min_length=1, max_length=64)
    plan: str = Field(min_length=1, max_length=40)
    card: str | None = Field(None, min_length=1, max_length=64,
                             description="Card id; default: the newest active card.")
    start: AwareDatetime | None = Field(None, description="Default now.")
    backfill: bool = False
    trial_days: int | None = Field(None, ge=0, le=730)
    quantity: int = Field(1, ge=1, le=MAX_QUANTITY)

    @model_validator(mode="after")
    def _start_in_range(self) -> SubscriptionCreate:
        if self.start is not None and not 1970 <= self.start.year <= 9998:
            raise ValueError("start must be between 1970 and 9998")
        return self


class SubscriptionCancel(Request):
    at_period_end: bool = False


class PlanChange(Request):
    plan: str | None = Field(None, min_length=1, max_length=40)
    quantity: int | None = Field(None, ge=1, le=MAX_QUANTITY)
    when: Literal["auto", "now", "period_end"] = "auto"

    @model_validator(mode="after")
    def _something(self) -> PlanChange:
        if self.plan is None and self.quantity is None:
            raise ValueError("give plan and/or quantity")
        return self


class SubscriptionOut(BaseModel):
    id: int
    customer: str
    status: str
    plan: str
    version: int
    quantity: int
    price: Amount
    interval: str
    anchor: str
    timezone: str
    trial_end: str | None
    current_period_start: str | None
    current_period_end: str | None
    next_renewal: str | None
    card: str | None
    cancel_at_period_end: bool
    canceled_at: str | None
    pending_change: str | None

    @classmethod
    def of(cls, view: merchant_api.SubscriptionView) -> SubscriptionOut:
        f = view.fields
        start, end = f["current_period"]
        return cls(id=f["id"], customer=f["customer"], status=f["status"], plan=f["plan"],
                   version=f["version"], quantity=f["quantity"],
                   price=Amount(amount=view.amount, currency=view.currency),
                   interval=f["interval"], anchor=f["anchor"], timezone=f["timezone"],
                   trial_end=f["trial_end"], current_period_start=start,
                   current_period_end=end, next_renewal=f["next_renewal"], card=f["card"],
                   cancel_at_period_end=f["cancel_at_period_end"],
                   canceled_at=f["canceled_at"], pending_change=f["pending_change"])


class SubscriptionCreated(SubscriptionOut):
    invoices_issued: int


class ChangePreviewOut(BaseModel):
    subscription: int
    from_plan: str
    to_plan: str
    from_quantity: int
    to_quantity: int
    applies: Literal["now", "period_end"]
    old_price: Amount
    new_price: Amount
    remaining_seconds: int | None
    period_seconds: int | None
    charge_now: Amount | None = Field(description="Billed on a proration invoice now.")
    credit_now: Amount | None
    invoice: str | None
    reduced: str | None
    credit_to_balance: Amount | None
    credit_forfeited: str | None

    @classmethod
    def of(cls, p: ChangePreview) -> ChangePreviewOut:
        old, new = Amount.of_text(p.old_price), Amount.of_text(p.new_price)
        assert old is not None and new is not None
        balance = p.credit_to_balance
        return cls(subscription=p.subscription, from_plan=p.from_plan, to_plan=p.to_plan,
                   from_quantity=p.from_quantity, to_quantity=p.to_quantity,
                   applies="now" if p.applies == "now" else "period_end", old_price=old,
                   new_price=new, remaining_seconds=p.remaining_seconds,
                   period_seconds=p.period_seconds, charge_now=Amount.of_text(p.charge_now),
                   credit_now=Amount.of_text(p.credit_now), invoice=p.invoice,
                   reduced=p.reduced,
                   credit_to_balance=Amount.of_text(balance.split(" (")[0] if balance else None),
                   credit_forfeited=p.credit_forfeited)
