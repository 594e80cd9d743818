"""Merchants the sandbox knows: each has an id, a signing key and a login name.

The dev default is documented in ``docs/gateway.md`` so anyone can point the engine at a sandbox
with no credentials: ``IOTPAY_MCH_ID=10000701 IOTPAY_MCH_KEY=sandbox-secret-key
IOTPAY_LOGIN_NAME=sandbox``. These keys protect nothing; they exist so signing is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from billing.errors import InvalidInput

__all__ = ["DEFAULT_MERCHANT", "Merchant", "parse_merchant"]


@dataclass(frozen=True)
class Merchant:
    mch_id: str
    key: str = field(repr=False)
    login_name: str


DEFAULT_MERCHANT = Merchant(mch_id="10000701", key="sandbox-secret-key", login_name="sandbox")


def parse_merchant(text: str) -> Merchant:
    """``MCHID:MCHKEY:LOGINNAME`` as given to ``billing sandbox --merchant``."""
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput("a merchant is MCHID:MCHKEY:LOGINNAME, three non-empty parts")
    mch_id, key, login = parts
    if len(mch_id) > 30 or len(login) > 12:
        raise InvalidInput("mchId is at most 30 characters and loginName at most 12")
    return Merchant(mch_id=mch_id, key=key, login_name=login)
