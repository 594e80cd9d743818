"""Gateway failures, classified by the one question a caller must answer: may I send it again?

    billing.errors.GatewayError            root of every gateway failure
    ├── GatewayNotSent                     the request never reached IOTPay (connection refused,
    │                                      connect timeout, DNS failure): sending again is safe
    ├── GatewayOutcomeUnknown              it may have been processed, but no usable answer came
    │                                      back (read timeout, reset or close after sending, any
    │                                      non-200 status, malformed body, JSON without retCode).
    │                                      A purchase, refund or void in this state is resolved with
    │                                      ``cc_query``; the client never re-sends it by itself.
    ├── GatewayRequestInvalid              local validation refused the request before any round
    │   (also billing.errors.InvalidInput) trip (31-char mchOrderNo, missing field, bad amount)
    └── NotifyError                        an inbound notify must not be trusted or acknowledged
        ├── NotifyMalformed                not JSON, not an object, or a field has a bad type
        ├── NotifyMissingFields            a required field (or ``sign``) is absent
        ├── NotifyBadSign                  the sign does not match the merchant key
        └── NotifyWrongMerchant            validly signed, but for another mchId

A declined card is not an exception: it is a ``GatewayReply`` (``retCode=SUCCESS`` with status 9,
or ``retCode=FAIL`` with its ``retMsg``). Messages never contain card data or the merchant key:
they are built from endpoint names, field names and exception class names only.
"""

from __future__ import annotations

from billing.errors import GatewayError, InvalidInput

__all__ = [
    "GatewayCallError",
    "GatewayError",
    "GatewayNotSent",
    "GatewayOutcomeUnknown",
    "GatewayRequestInvalid",
    "NotifyBadSign",
    "NotifyError",
    "NotifyMalformed",
    "NotifyMissingFields",
    "NotifyWrongMerchant",
]


class GatewayCallError(GatewayError):
    """A call to one endpoint failed in transit; ``safe_to_resend`` says what the caller may do."""

    safe_to_resend: bool = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        reference: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.reference = reference
        self.http_status = http_status


class GatewayNotSent(GatewayCallError):
    """No byte of the request reached the gateway, so nothing can have been charged."""

    safe_to_resend = True


class GatewayOutcomeUnknown(GatewayCallError):
    """The gateway may have acted on the request; resolve with ``cc_query`` before anything else."""

    safe_to_resend = False


class GatewayRequestInvalid(GatewayError, InvalidInput):
    """The request failed local validation; ``fields`` names the offending fields (never values)."""

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class NotifyError(GatewayError):
    """An inbound notify was rejected: change nothing and do not answer ``SUCCESS``."""


class NotifyMalformed(NotifyError):
    """The body is not a JSON object, or a field cannot be read as its documented type."""


class NotifyMissingFields(NotifyError):
    """Required fields are absent; ``fields`` lists them."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        super().__init__(f"notify is missing required fields: {', '.join(fields)}")
        self.fields = fields


class NotifyBadSign(NotifyError):
    """The sign does not verify with the merchant key: a forgery, a corruption or the wrong key."""


class NotifyWrongMerchant(NotifyError):
    """The notify is validly signed but names another merchant."""
