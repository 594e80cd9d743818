"""Request checks the sandbox makes before acting, each failing with a ``retMsg`` naming the
problem, so an engine bug shows up as a clear refusal instead of a silent difference from IOTPay.

Order of checks: JSON object, ``mchId`` known, ``sign`` valid, ``loginName`` matches (endpoints
that take it), then each field of the endpoint in reference order: present when required, a
string within its documented length, ``currency`` CAD, ``channel`` UPI_EX, amounts positive
integers. The wording of these messages is the sandbox's own: the reference documents none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from billing.gateway.sign import verify_sign
from billing.sandbox.merchants import Merchant

__all__ = ["ENDPOINTS", "authenticate", "check_fields"]

Kind = Literal["str", "amount", "currency", "channel"]


@dataclass(frozen=True)
class Spec:
    name: str
    max_len: int | None = None
    required: bool = True
    kind: Kind = "str"


def _opt(name: str, max_len: int) -> Spec:
    return Spec(name, max_len, required=False)


_AMOUNT = Spec("amount", kind="amount")
_CURRENCY = Spec("currency", 3, kind="currency")
_CHANNEL = Spec("channel", kind="channel")

ENDPOINTS: dict[str, tuple[Spec, ...]] = {
    "cc_purchase": (
        Spec("mchOrderNo", 30), Spec("mchUserId", 30), _AMOUNT, _CURRENCY,
        _opt("subject", 64), _opt("body", 250), _CHANNEL, Spec("notifyUrl", 200),
        Spec("returnUrl", 200),
    ),
    "cc_addcard": (Spec("cardId", 30), _CHANNEL, Spec("returnUrl", 200)),
    "cc_directaddcard": (
        Spec("cardId", 30), Spec("cardNum", 19), _opt("expiryDate", 4), Spec("holder", 64),
        Spec("cvv", 4), _CHANNEL,
    ),
    "cc_querycard": (Spec("cardId", 30),),
    "cc_purchasewithtoken": (
        Spec("mchOrderNo", 30), Spec("mchUserId", 30), Spec("cardId", 30), _AMOUNT, _CURRENCY,
        _opt("subject", 64), _opt("body", 250), _opt("clientIp", 50), Spec("notifyUrl", 250),
    ),
    "cc_refund": (
        Spec("mchRefundNo", 30), Spec("refundAmount", kind="amount"), Spec("payOrderId", 30),
        Spec("notifyUrl", 250),
    ),
    "cc_void": (Spec("mchRefundNo", 30), Spec("payOrderId", 30), Spec("notifyUrl", 250)),
    "cc_query": (_opt("mchOrderNo", 30), _opt("payOrderId", 30)),
}  # fmt: skip

_WITHOUT_LOGIN = frozenset({"cc_querycard", "cc_query"})


def _present(fields: Mapping[str, object], name: str) -> bool:
    return fields.get(name) not in (None, "")


def authenticate(
    endpoint: str, fields: Mapping[str, object], merchants: Mapping[str, Merchant]
) -> Merchant | str:
    """The calling merchant, or the ``retMsg`` refusing the call."""
    mch_id = fields.get("mchId")
    if not _present(fields, "mchId"):
        return "missing field: mchId"
    merchant = merchants.get(str(mch_id))
    if merchant is None:
        return "unknown mchId"
    if not _present(fields, "sign"):
        return "missing field: sign"
    if not verify_sign(fields, merchant.key):
        return "sign error: sign does not match"
    if endpoint not in _WITHOUT_LOGIN and str(fields.get("loginName", "")) != merchant.login_name:
        return "wrong loginName" if _present(fields, "loginName") else "missing field: loginName"
    return merchant


def check_fields(endpoint: str, fields: Mapping[str, object]) -> str | None:
    """The first problem with the endpoint's fields as a ``retMsg``, or None."""
    for spec in ENDPOINTS[endpoint]:
        problem = _check(spec, fields)
        if problem is not None:
            return problem
    if endpoint == "cc_query":
        given = [n for n in ("mchOrderNo", "payOrderId") if _present(fields, n)]
        if len(given) != 1:
            return (
                "use either mchOrderNo or payOrderId"
                if given
                else ("missing field: mchOrderNo or payOrderId")
            )
    return None


def _check(spec: Spec, fields: Mapping[str, object]) -> str | None:
    if not _present(fields, spec.name):
        return f"missing field: {spec.name}" if spec.required else None
    value = fields[spec.name]
    if spec.kind == "amount":
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        return None if ok else f"invalid {spec.name}: must be a positive integer in cents"
    if not isinstance(value, str | int) or isinstance(value, bool):
        return f"invalid {spec.name}: must be a string"
    if spec.max_len is not None and len(str(value)) > spec.max_len:
        return f"field too long: {spec.name} (max {spec.max_len})"
    if spec.kind == "currency" and value != "CAD":
        return "currency not supported: only CAD"
    if spec.kind == "channel" and value != "UPI_EX":
        return "invalid channel: must be UPI_EX"
    return None
