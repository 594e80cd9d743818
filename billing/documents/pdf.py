"""HTML to PDF with WeasyPrint, which needs Pango (see docs/invoices.md for the system packages).

Documents are self-contained: the logo is a ``data:`` URI and the styles are inline, so the
fetcher allows no other protocol, and fails the rendering instead of leaving a hole: a merchant's
template can make rendering neither reach the network nor read files.
"""

from __future__ import annotations

from billing.errors import InvalidInput


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    try:
        return bytes(HTML(string=html, url_fetcher=fetcher).write_pdf())
    except FatalURLFetchingError as exc:
        raise InvalidInput(f"a document may only embed data: URIs ({exc})") from None
