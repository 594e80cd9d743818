"""The few HTML pages customers see on the receiver: continue to card entry, card saved, or what
went wrong.

Every value shown is escaped with ``html.escape``; the pages load nothing from elsewhere, so the
headers can forbid everything (CSP ``default-src 'none'``), and they are never cached or sent as
a referrer, since the update-card URL carries a customer's token.
"""

from __future__ import annotations

from html import escape

from fastapi.responses import HTMLResponse

__all__ = ["SAFE_HEADERS", "card_saved", "continue_page", "page"]

SAFE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}

_STYLE = "body{font-family:sans-serif;max-width:32em;margin:3em auto;line-height:1.4}"


def page(status: int, title: str, message: str, *, button: str | None = None,
         lang: str = "en") -> HTMLResponse:
    """A complete, escaped page with the given status; with ``button``, a form that posts back
    to the same URL. ``lang`` is the page's language (``en`` or ``fr``), for screen readers."""
    form = (f"<form method=\"post\"><button type=\"submit\">{escape(button)}</button></form>"
            if button else "")
    body = (
        f"<!doctype html><html lang=\"{escape(lang)}\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>{form}</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SAFE_HEADERS)


def continue_page() -> HTMLResponse:
    """What an update-card link shows before anything happens: opening a card page creates a
    pending card and calls the gateway, so it waits for a person's click (a POST), not for
    the link scanners of mail providers that fetch every link in an email."""
    return page(200, "Update your card",
                "You will enter your new card on our payment provider's secure page.",
                button="Continue")


def card_saved(masked_number: str | None) -> HTMLResponse:
    """``Card ending 0014 saved``: the last four digits are all a masked number reveals anyway."""
    digits = "".join(c for c in masked_number or "" if c.isdigit())
    title = f"Card ending {digits[-4:]} saved" if len(digits) >= 4 else "Card saved"
    return page(200, title, "Your card was saved. You can close this page.")
