"""The hosted pages behind ``retData.redirectUrl``: a plain HTML card form for ``cc_addcard``
(``/cc/addcard?key=...``) and ``cc_purchase`` (``/cc/purchase?key=...``).

Posting the form stores the card, or charges it once, and redirects the browser (303) to the
merchant's ``returnUrl`` with ``retCode=SUCCESS`` (``&status=2`` after a purchase) or
``retCode=FAIL&retMsg=...``. Those parameters are unsigned, exactly as at IOTPay: only the notify
or ``cc_query`` proves a payment.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["expired_page", "form_page"]

_STYLE = (
    "body{font-family:sans-serif;max-width:28em;margin:3em auto}label{display:block;margin:.6em 0}"
)


def form_page(kind: str, key: str, fields: dict[str, Any]) -> bytes:
    """The card form; for a purchase it shows the amount it will charge."""
    if kind == "purchase":
        amount = int(fields.get("amount", 0))
        title = f"Pay {amount // 100}.{amount % 100:02d} {escape(str(fields.get('currency', '')))}"
        if fields.get("subject"):
            title += f" for {escape(str(fields['subject']))}"
    else:
        title = "Add a card"
    html = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>IOTPay sandbox: {title}</title>
<style>{_STYLE}</style></head>
<body><h1>{title}</h1><p>IOTPay sandbox. Use a test card from docs/gateway.md.</p>
<form method="post" action="/cc/{escape(kind)}?key={escape(key)}">
<label>Card number
<input name="cardNum" inputmode="numeric" autocomplete="cc-number" required></label>
<label>Expiry (MMYY) <input name="expiryDate" pattern="[0-9]{{4}}" required></label>
<label>Card holder <input name="holder" autocomplete="cc-name" required></label>
<label>CVV <input name="cvv" inputmode="numeric" pattern="[0-9]{{3,4}}" required></label>
<button type="submit">{"Pay" if kind == "purchase" else "Save card"}</button>
</form></body></html>"""
    return html.encode("utf-8")


def expired_page() -> bytes:
    return (
        b"<!doctype html><html><head><meta charset='utf-8'><title>IOTPay sandbox</title></head>"
        b"<body><h1>This page has expired</h1><p>The link is unknown or was already used.</p>"
        b"</body></html>"
    )
