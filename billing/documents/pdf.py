"""HTML to PDF with WeasyPrint, which needs Pango (see docs/invoices.md for the system packages).

Documents are self-contained: the logo is a ``data:`` URI and the styles are inline, so the
fetcher refuses every other URL. A merchant's template cannot make rendering reach the network
or read files, and a PDF rendered twice from the same HTML is the same document.
"""

from __future__ import annotations

from typing import Any

from billing.errors import InvalidInput


def _only_data_uris(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    if not url.startswith("data:"):
        raise InvalidInput(f"documents may only embed data: URIs (a template asked for {url!r})")
    from weasyprint.urls import default_url_fetcher

    result: dict[str, Any] = default_url_fetcher(url, *args, **kwargs)
    return result


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    document = HTML(string=html, url_fetcher=_only_data_uris)
    return bytes(document.write_pdf())
