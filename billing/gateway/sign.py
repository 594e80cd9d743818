"""The IOTPay MD5 sign: how both sides prove a message came from someone holding the merchant key.

Algorithm (IOTPay notes): take every top-level field except ``sign``, drop empty strings and
nulls (zeros stay), sort by ``(name.lower(), name)`` as IOTPay's PHP SDK does, join as
``k=v&k=v`` with raw values, append ``&key=<merchant key>``, MD5 the UTF-8 bytes, upper-case hex.
MD5 is a weak MAC, so signatures are compared in constant time and the key is never logged.
Values that are not strings or integers are formatted the way PHP would print them (``true`` as
``1``, ``false`` dropped): an inferred rule, since no documented message carries such values.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from pydantic import SecretStr

__all__ = ["sign", "verify_sign"]


def _text(value: object) -> str:
    """The value as the signer sees it; the empty string means 'leave the field out'."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reveal(key: str | SecretStr) -> str:
    return key.get_secret_value() if isinstance(key, SecretStr) else key


def sign(fields: Mapping[str, object], key: str | SecretStr) -> str:
    """The 32-char upper-case MD5 sign of ``fields`` under the merchant ``key``."""
    pairs = [(name, _text(value)) for name, value in fields.items() if name != "sign"]
    kept = sorted(((n, v) for n, v in pairs if v != ""), key=lambda p: (p[0].lower(), p[0]))
    text = "&".join(f"{name}={value}" for name, value in kept) + "&key=" + _reveal(key)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest().upper()


def verify_sign(fields: Mapping[str, object], key: str | SecretStr) -> bool:
    """Whether ``fields["sign"]`` matches; constant-time, and case-insensitive in the hex digits."""
    received = fields.get("sign")
    if not isinstance(received, str):
        return False
    expected = sign(fields, key)
    return hmac.compare_digest(received.upper().encode("utf-8"), expected.encode("ascii"))
