"""Typed answers from the gateway, parsed tolerantly because the reference promises nothing fixed.

IOTPay says new fields may appear and field order may change, so reply models ignore order, keep
unknown order fields (``OrderInfo``) or drop them (``CardInfo``), treat ``""`` as absent and make
most fields optional: a missing field must never turn a real charge into a parse error.

``retCode=FAIL`` is a ``GatewayReply`` with ``ok == False``, not an exception: the call was
answered, and its ``retMsg`` says why it was refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from billing.gateway.masking import mask_pan
from billing.gateway.status import is_failed, is_paid, is_unsettled

__all__ = [
    "CardInfo",
    "GatewayReply",
    "OrderInfo",
    "RedirectInfo",
    "is_order_not_found",
]

# Never kept even if the gateway echoes them (the reference lists ``cvv`` in card replies).
_SENSITIVE = frozenset({"cvv", "cvv2", "cvc", "key", "mchkey", "sign"})


def _clean(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items() if v != "" and str(k).lower() not in _SENSITIVE}


class _Reply(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_and_secrets(cls, data: Any) -> Any:
        return _clean(data)

    @field_validator("card_num", mode="after", check_fields=False)
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        return None if value is None else mask_pan(value)


class OrderInfo(_Reply):
    """``retData`` of purchase, token purchase, refund, void and query; also a notify's body."""

    model_config = ConfigDict(extra="allow")

    pay_order_id: str | None = None
    mch_id: str | None = None
    mch_order_no: str | None = None
    original_order_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    pay_type: str | None = None
    refundable: int | None = None
    status: int | None = None
    invoice_num: str | None = None
    pay_succ_time: str | None = None
    card_num: str | None = None
    card_type: str | None = None
    expiry_date: str | None = None
    auth_num: str | None = None
    trans_num: str | None = None
    channel: str | None = None

    @property
    def paid(self) -> bool:
        return is_paid(self.status)

    @property
    def failed(self) -> bool:
        return is_failed(self.status)

    @property
    def unsettled(self) -> bool:
        return is_unsettled(self.status)


class CardInfo(_Reply):
    """A vaulted card as the gateway reports it: masked number only, never a CVV."""

    model_config = ConfigDict(extra="ignore")

    card_id: str | None = None
    card_num: str | None = None
    expiry_date: str | None = None
    holder: str | None = None


class RedirectInfo(_Reply):
    """Where to send the customer's browser for a hosted page (``cc_purchase``, ``cc_addcard``)."""

    model_config = ConfigDict(extra="ignore")

    redirect_url: str
    secure_id: str | None = None


T = TypeVar("T")


@dataclass(frozen=True)
class GatewayReply(Generic[T]):
    """An answered call: ``ok`` means ``retCode=SUCCESS`` (accepted), not "paid"."""

    endpoint: str
    ret_code: str
    ret_msg: str
    data: T | None

    @property
    def ok(self) -> bool:
        return self.ret_code == "SUCCESS"

    @property
    def order_not_found(self) -> bool:
        return is_order_not_found(self)


_NOT_FOUND = ("not found", "not exist", "no such")


def is_order_not_found(reply: GatewayReply[Any]) -> bool:
    """Whether a ``cc_query`` FAIL says the order does not exist.

    **Inferred**: the reference does not document this answer. The sandbox replies
    ``retCode=FAIL, retMsg="order not found"``; a few other wordings are accepted so a change of
    phrase at IOTPay is more likely to read as "not found" than as an unexplained failure, but the
    message must name the *order*: "merchant not found" proves nothing about an order. Only this
    answer proves an unknown purchase did not charge.
    """
    if reply.ok:
        return False
    text = reply.ret_msg.strip().lower()
    if "订单不存在" in text:
        return True
    return "order" in text and any(phrase in text for phrase in _NOT_FOUND)
