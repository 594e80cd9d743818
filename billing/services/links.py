"""Signed links, so a URL in an email or a gateway redirect can't be forged or guessed.

* Update-card links for customers (dunning emails): the customer's engine id and an HMAC-SHA256
  of it under the engine's link secret.
* The return URL handed to the gateway's hosted card page: the cardId and an HMAC of it, so
  outsiders can't make the receiver confirm (and query the gateway about) arbitrary cardIds.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from billing.services.ports import EngineConfig


def _mac(config: EngineConfig, purpose: str, subject: str) -> str:
    key = config.link_secret.get_secret_value().encode()
    return hmac.new(key, f"{purpose}:{subject}".encode(), hashlib.sha256).hexdigest()[:32]


def _matches(config: EngineConfig, purpose: str, subject: str, mac: str) -> bool:
    if not mac.isascii():
        return False
    return hmac.compare_digest(mac.encode(), _mac(config, purpose, subject).encode())


def update_card_token(config: EngineConfig, customer_id: int) -> str:
    return f"{customer_id}.{_mac(config, 'update-card', str(customer_id))}"


def update_card_url(config: EngineConfig, customer_id: int) -> str:
    token = update_card_token(config, customer_id)
    return f"{config.public_url.rstrip('/')}/billing/update-card/{token}"


def customer_of_token(config: EngineConfig, token: str) -> int | None:
    """The customer id a token was made for, or None if it is malformed or forged."""
    head, _, mac = token.partition(".")
    if not head.isascii() or not head.isdigit() or len(head) > 12:
        return None
    return int(head) if _matches(config, "update-card", head, mac) else None


def card_return_url(config: EngineConfig, card_id: str) -> str:
    """Where the gateway sends the browser after hosted card entry, signed for ``card_id``."""
    query = urlencode({"cardId": card_id, "sig": _mac(config, "card-return", card_id)})
    return f"{config.public_url.rstrip('/')}/iotpay/return/addcard?{query}"


def card_return_valid(config: EngineConfig, card_id: str, sig: str) -> bool:
    return _matches(config, "card-return", card_id, sig)
