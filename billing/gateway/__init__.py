"""IOTPay ExpressPay v3: the client the engine charges through, and notify verification.

Import from here, not from the submodules. The outcome classification the engine relies on is in
``billing.gateway.errors`` and ``docs/gateway.md``.
"""

from billing.gateway.client import IotpayClient, QueryRetry, default_session
from billing.gateway.errors import (
    GatewayCallError,
    GatewayError,
    GatewayNotSent,
    GatewayOutcomeUnknown,
    GatewayRequestInvalid,
    NotifyBadSign,
    NotifyError,
    NotifyMalformed,
    NotifyMissingFields,
    NotifyWrongMerchant,
)
from billing.gateway.masking import mask_pan
from billing.gateway.notify import NOTIFY_ACK, Notify, dedupe_key, verify_notify
from billing.gateway.outcomes import (
    claims_of,
    outcome_of_error,
    outcome_of_notify,
    outcome_of_purchase,
    outcome_of_query,
)
from billing.gateway.replies import (
    CardInfo,
    GatewayReply,
    OrderInfo,
    RedirectInfo,
    is_order_not_found,
)
from billing.gateway.sign import sign, verify_sign
from billing.gateway.status import OrderStatus, is_failed, is_paid, is_unsettled

__all__ = [
    "NOTIFY_ACK",
    "CardInfo",
    "GatewayCallError",
    "GatewayError",
    "GatewayNotSent",
    "GatewayOutcomeUnknown",
    "GatewayReply",
    "GatewayRequestInvalid",
    "IotpayClient",
    "Notify",
    "NotifyBadSign",
    "NotifyError",
    "NotifyMalformed",
    "NotifyMissingFields",
    "NotifyWrongMerchant",
    "OrderInfo",
    "OrderStatus",
    "QueryRetry",
    "RedirectInfo",
    "claims_of",
    "dedupe_key",
    "default_session",
    "is_failed",
    "is_order_not_found",
    "is_paid",
    "is_unsettled",
    "mask_pan",
    "outcome_of_error",
    "outcome_of_notify",
    "outcome_of_purchase",
    "outcome_of_query",
    "sign",
    "verify_notify",
    "verify_sign",
]
