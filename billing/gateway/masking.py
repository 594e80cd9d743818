"""Card-number masking, applied wherever a number could leave the process.

The gateway is documented to return masked numbers (``432567******2266``), but ``cc_directaddcard``
lists ``cardNum`` in its reply without saying it is masked. Masking again on our side makes a
full number impossible to keep, log or print, whatever the gateway sends.
"""

from __future__ import annotations

import re

__all__ = ["mask_pan", "redact_pans"]

_DIGITS = re.compile(r"\d{12,19}")


def mask_pan(number: str) -> str:
    """``6250947000000014`` -> ``625094******0014``; already-masked or short values pass through."""
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isdigit() or len(digits) < 12:
        return number
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def redact_pans(text: str) -> str:
    """Mask every run of 12-19 digits inside free text (gateway messages we echo into errors)."""
    return _DIGITS.sub(lambda m: mask_pan(m.group(0)), text)
