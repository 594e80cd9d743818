"""Signed links, so a URL in an email or a gateway redirect can't be forged or guessed.

* Update-card links for customers (dunning emails): the customer's engine id, the last UTC day
  the link works, and an HMAC-SHA256 of both under the engine's link secret. Links expire
  (``EngineConfig.update_card_link_ttl``, 30 days) so an old email found in a mailbox years later
  can't open a card page; every dunning email carries a fresh one.
* Pay-now links for an open invoice (payment-failed, reminder and final-notice emails, and the
  API): the invoice's engine id, the last UTC day, and an HMAC under another purpose, so an
  update-card token can never be replayed as a pay-now token or the other way round. They expire
  like update-card links (``EngineConfig.pay_now_link_ttl``, 30 days); the invoice's own state
  (still open?) is checked when the link is used, not trusted from the token.
* The return URL handed to the gateway's hosted pay-now page: the order number and an HMAC of
  it, for the same reason as the card return below.
* The return URL handed to the gateway's hosted card page: the cardId and an HMAC of it, so
  outsiders can't make the receiver confirm (and query the gateway about) arbitrary cardIds.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime
from urllib.parse import urlencode

from billing.services.ports import EngineConfig


def _mac(config: EngineConfig, purpose: str, subject: str) -> str:
    key = config.link_secret.get_secret_value().encode()
    return hmac.new(key, f"{purpose}:{subject}".encode(), hashlib.sha256).hexdigest()[:32]


def _matches(config: EngineConfig, purpose: str, subject: str, mac: str) -> bool:
    if not mac.isascii():
        return False
    return hmac.compare_digest(mac.encode(), _mac(config, purpose, subject).encode())


def _dated_token(config: EngineConfig, purpose: str, subject_id: int, last: date) -> str:
    subject = f"{subject_id}.{last.strftime('%Y%m%d')}"
    return f"{subject}.{_mac(config, purpose, subject)}"


def _id_of_dated_token(config: EngineConfig, purpose: str, token: str, now: datetime) -> int | None:
    head, _, rest = token.partition(".")
    last_day, _, mac = rest.partition(".")
    if not (head.isascii() and head.isdigit() and len(head) <= 12):
        return None
    if not (last_day.isascii() and last_day.isdigit() and len(last_day) == 8):
        return None
    if not _matches(config, purpose, f"{head}.{last_day}", mac):
        return None
    try:
        expires = date(int(last_day[:4]), int(last_day[4:6]), int(last_day[6:]))
    except ValueError:
        return None
    return int(head) if now.date() <= expires else None


def update_card_token(config: EngineConfig, customer_id: int, at: datetime) -> str:
    """A token for ``customer_id`` that works through the UTC day ``at + ttl`` falls on."""
    return _dated_token(config, "update-card", customer_id,
                        (at + config.update_card_link_ttl).date())


def update_card_url(config: EngineConfig, customer_id: int, at: datetime) -> str:
    token = update_card_token(config, customer_id, at)
    return f"{config.public_url.rstrip('/')}/billing/update-card/{token}"


def customer_of_token(config: EngineConfig, token: str, now: datetime) -> int | None:
    """The customer id a token was made for, or None if it is malformed, forged or expired."""
    return _id_of_dated_token(config, "update-card", token, now)


def pay_now_token(config: EngineConfig, invoice_id: int, at: datetime) -> str:
    """A token for paying ``invoice_id`` that works through the UTC day ``at + ttl`` falls on."""
    return _dated_token(config, "pay-now", invoice_id, (at + config.pay_now_link_ttl).date())


def pay_now_url(config: EngineConfig, invoice_id: int, at: datetime) -> str:
    """``BILLING_PUBLIC_URL/billing/pay/<token>``: a GET shows a Continue button, the POST pays."""
    token = pay_now_token(config, invoice_id, at)
    return f"{config.public_url.rstrip('/')}/billing/pay/{token}"


def invoice_of_pay_token(config: EngineConfig, token: str, now: datetime) -> int | None:
    """The invoice id a pay-now token was made for, or None if malformed, forged or expired."""
    return _id_of_dated_token(config, "pay-now", token, now)


def card_return_url(config: EngineConfig, card_id: str) -> str:
    """Where the gateway sends the browser after hosted card entry, signed for ``card_id``."""
    query = urlencode({"cardId": card_id, "sig": _mac(config, "card-return", card_id)})
    return f"{config.public_url.rstrip('/')}/iotpay/return/addcard?{query}"


def card_return_valid(config: EngineConfig, card_id: str, sig: str) -> bool:
    return _matches(config, "card-return", card_id, sig)


def pay_return_url(config: EngineConfig, mch_order_no: str) -> str:
    """Where the gateway sends the browser after a hosted pay-now, signed for its order number,
    so outsiders can't make the receiver query the gateway about arbitrary orders."""
    query = urlencode({"order": mch_order_no, "sig": _mac(config, "pay-return", mch_order_no)})
    return f"{config.public_url.rstrip('/')}/iotpay/return/pay?{query}"


def pay_return_valid(config: EngineConfig, mch_order_no: str, sig: str) -> bool:
    return _matches(config, "pay-return", mch_order_no, sig)
