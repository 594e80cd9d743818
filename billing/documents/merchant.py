"""Who issues the documents: the merchant's identity from settings, its logo as a data URI."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from billing.settings import Settings, logo_type


@dataclass(frozen=True)
class Merchant:
    name: str
    """The brand (``BILLING_MERCHANT_NAME``)."""
    legal_name: str
    address: tuple[str, ...]
    email: str
    logo: str | None
    """A ``data:`` URI, so an HTML file or a PDF carries its logo with it."""
    gst_hst_number: str | None
    qst_number: str | None
    templates_dir: Path | None = None


def logo_uri(path: Path) -> str:
    """The logo file as a ``data:`` URI (its type read from its content, as settings checked)."""
    media = logo_type(path)
    return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def merchant_from_settings(settings: Settings) -> Merchant:
    address = tuple(settings.merchant_address.splitlines()) if settings.merchant_address else ()
    return Merchant(
        name=settings.merchant_name,
        legal_name=settings.merchant_legal_name or settings.merchant_name,
        address=address, email=settings.merchant_email,
        logo=logo_uri(settings.merchant_logo) if settings.merchant_logo else None,
        gst_hst_number=settings.gst_hst_number, qst_number=settings.qst_number,
        templates_dir=settings.templates_dir,
    )
