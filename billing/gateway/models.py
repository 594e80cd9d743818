"""Request models: every field checked against the reference's limits before anything is sent.

A request that the gateway would reject (a 31-char ``mchOrderNo``, a missing ``notifyUrl``) fails
here with ``GatewayRequestInvalid`` and costs no round trip, and, more important, can never be the
cause of an unknown outcome. Field names are snake_case in Python and camelCase on the wire.

Card number and CVV are ``SecretStr`` so no repr shows them, and ``build`` re-raises pydantic's
``ValidationError`` (which quotes the offending input) as a message that names fields only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from billing.domain.money import MAX_CHARGE
from billing.gateway.errors import GatewayRequestInvalid

__all__ = [
    "AddCardRequest",
    "DirectAddCardRequest",
    "PurchaseRequest",
    "PurchaseWithTokenRequest",
    "QueryCardRequest",
    "QueryRequest",
    "RefundRequest",
    "VoidRequest",
    "build",
]

Channel = Literal["UPI_EX"]
Currency = Literal["CAD"]
Cents = Annotated[StrictInt, Field(gt=0, le=MAX_CHARGE)]
"""The reference types ``amount`` as ``Int``: a signed 32-bit count of cents at most."""


def _s(max_length: int) -> Any:
    return Field(min_length=1, max_length=max_length)


class WireModel(BaseModel):
    """Base of every request: camelCase on the wire, immutable, no unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, object]:
        """The JSON object to sign and send, with secrets revealed and unset optionals dropped."""
        out: dict[str, object] = {}
        for name, value in self.model_dump(by_alias=True, exclude_none=True).items():
            out[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
        return out


class MerchantFields(WireModel):
    mch_id: str = _s(30)


class SignedInFields(MerchantFields):
    login_name: str = _s(12)


class PurchaseRequest(SignedInFields):
    mch_order_no: str = _s(30)
    mch_user_id: str = _s(30)
    amount: Cents
    currency: Currency = "CAD"
    subject: str | None = Field(None, max_length=64)
    body: str | None = Field(None, max_length=250)
    channel: Channel = "UPI_EX"
    notify_url: str = _s(200)
    return_url: str = _s(200)


class AddCardRequest(SignedInFields):
    card_id: str = _s(30)
    channel: Channel = "UPI_EX"
    return_url: str = _s(200)


class DirectAddCardRequest(SignedInFields):
    card_id: str = _s(30)
    card_num: SecretStr
    expiry_date: str | None = Field(None, pattern=r"^(0[1-9]|1[0-2])\d\d$")
    holder: str = _s(64)
    cvv: SecretStr
    channel: Channel = "UPI_EX"

    @field_validator("card_num", mode="before")
    @classmethod
    def _card_digits(cls, value: object) -> object:
        return _digits(value, 12, 19, "a card number must be 12 to 19 digits")

    @field_validator("cvv", mode="before")
    @classmethod
    def _cvv_digits(cls, value: object) -> object:
        return _digits(value, 3, 4, "a CVV must be 3 or 4 digits")


def _digits(value: object, low: int, high: int, message: str) -> object:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(raw, str) or not raw.isdigit() or not low <= len(raw) <= high:
        raise ValueError(message)
    return raw


class QueryCardRequest(MerchantFields):
    card_id: str = _s(30)


class PurchaseWithTokenRequest(SignedInFields):
    mch_order_no: str = _s(30)
    mch_user_id: str = _s(30)
    card_id: str = _s(30)
    amount: Cents
    currency: Currency = "CAD"
    subject: str | None = Field(None, max_length=64)
    body: str | None = Field(None, max_length=250)
    client_ip: str | None = Field(None, max_length=50)
    notify_url: str = _s(250)


class RefundRequest(SignedInFields):
    mch_refund_no: str = _s(30)
    refund_amount: Cents
    pay_order_id: str = _s(30)
    notify_url: str = _s(250)


class VoidRequest(SignedInFields):
    mch_refund_no: str = _s(30)
    pay_order_id: str = _s(30)
    notify_url: str = _s(250)


class QueryRequest(MerchantFields):
    mch_order_no: str | None = Field(None, min_length=1, max_length=30)
    pay_order_id: str | None = Field(None, min_length=1, max_length=30)

    @model_validator(mode="after")
    def _exactly_one(self) -> QueryRequest:
        if (self.mch_order_no is None) == (self.pay_order_id is None):
            raise ValueError("give exactly one of mch_order_no and pay_order_id")
        return self


M = TypeVar("M", bound=WireModel)


def _where(loc: tuple[int | str, ...]) -> str:
    """The wire name of the failing field (``mchOrderNo``), whichever spelling was passed."""
    return ".".join(to_camel(str(part)) for part in loc) or "request"


def build(model: type[M], **fields: object) -> M:
    """Validate ``fields`` into ``model``; failures name the fields and rules, never the values."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = [(_where(e["loc"]), e["msg"]) for e in exc.errors()]
        names = tuple(name for name, _ in problems)
        text = "; ".join(f"{name}: {msg}" for name, msg in problems)
        raise GatewayRequestInvalid(f"{model.__name__} is invalid: {text}", fields=names) from None
