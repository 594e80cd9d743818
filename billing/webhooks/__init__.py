"""Signed webhooks to the merchant's app: public event types, payloads, signing and the POST.

This package is pure apart from ``sender`` (HTTP): the outbox rows, the tick and the commands
live in ``billing.services.webhooks``. ``verify`` is what a merchant's receiver runs.
"""

from __future__ import annotations

from billing.webhooks.signing import HEADER, SignatureError, sign, verify

__all__ = ["HEADER", "SignatureError", "sign", "verify"]
