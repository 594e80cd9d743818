"""The two translations into the attempt vocabulary: gateway replies and gateway exceptions.

Everything the engine learns about a charge becomes a ``billing.domain.payments.Outcome`` here,
and only here, so ``decide`` sees one vocabulary whether the fact came from a purchase reply, a
signed notify, a ``cc_query`` answer or a transit failure. Each outcome carries the *claims* of
the answer (order number, amount, currency, merchant, gateway order id, card expiry), so ``decide``
can refuse an answer that is about another order.

How answers are classified, from the reference's codes and fields only, never from ``retMsg``
wording (which is for people, and in which "Restricted merchant category" is a decline, not a
set-up error):

* ``retCode=SUCCESS`` with ``status`` 2/3 paid, 9 declined, anything else unsettled;
* ``retCode=FAIL`` to a purchase: the gateway refused the request (sign, merchant, parameters):
  a set-up error, nothing charged;
* ``retCode=FAIL`` to a query: "no such order" when it says so (``is_order_not_found``),
  otherwise no usable answer;
* ``GatewayNotSent``: never reached the gateway, may be sent again; ``GatewayRequestInvalid``:
  never sent because it would be refused, a set-up error; any other exception: unknown, resolve
  with ``cc_query``.
"""

from __future__ import annotations

from billing.domain.payments import Claims, Outcome, OutcomeKind, Source
from billing.errors import GatewayError
from billing.gateway.errors import GatewayNotSent, GatewayRequestInvalid
from billing.gateway.replies import GatewayReply, OrderInfo
from billing.gateway.status import is_failed, is_paid

__all__ = ["claims_of", "outcome_of_error", "outcome_of_notify", "outcome_of_purchase",
           "outcome_of_query"]


def claims_of(data: OrderInfo) -> Claims:
    """What an order body (reply ``retData`` or notify) asserts, including an echoed ``cardId``."""
    extra = data.model_extra or {}
    card_id = extra.get("cardId")
    return Claims(mch_order_no=data.mch_order_no, amount=data.amount, currency=data.currency,
                  mch_id=data.mch_id, card_id=str(card_id) if card_id else None,
                  pay_order_id=data.pay_order_id, status=data.status, expiry=data.expiry_date)


def _by_status(data: OrderInfo, source: Source, reason: str | None) -> Outcome:
    if is_paid(data.status):
        kind = OutcomeKind.PAID
    elif is_failed(data.status):
        kind = OutcomeKind.DECLINED
    else:
        kind = OutcomeKind.UNSETTLED
    return Outcome(kind, source, claims_of(data), reason if kind is OutcomeKind.DECLINED else None)


def outcome_of_purchase(reply: GatewayReply[OrderInfo], source: Source = Source.PURCHASE
                        ) -> Outcome:
    """A ``cc_purchasewithtoken`` reply."""
    if not reply.ok:
        return Outcome(OutcomeKind.REJECTED, source, reason=reply.ret_msg or "refused")
    if reply.data is None:
        return Outcome(OutcomeKind.UNKNOWN, source, reason="accepted without order data")
    return _by_status(reply.data, source, reply.ret_msg or "declined")


def outcome_of_query(reply: GatewayReply[OrderInfo]) -> Outcome:
    """A ``cc_query`` reply by ``mchOrderNo``."""
    if reply.order_not_found:
        return Outcome(OutcomeKind.NOT_FOUND, Source.QUERY)
    if not reply.ok or reply.data is None:
        return Outcome(OutcomeKind.NO_ANSWER, Source.QUERY, reason=reply.ret_msg or "no data")
    return _by_status(reply.data, Source.QUERY, reply.ret_msg or "declined")


def outcome_of_notify(notify: OrderInfo) -> Outcome:
    """A verified ``payType=pay`` notify (its sign and ``mchId`` were checked on receipt)."""
    return _by_status(notify, Source.NOTIFY, "declined (notify)")


def outcome_of_error(exc: BaseException, source: Source = Source.PURCHASE) -> Outcome:
    """A purchase that raised: not sent only when provably so, otherwise unknown."""
    if isinstance(exc, GatewayNotSent):
        return Outcome(OutcomeKind.NOT_SENT, source, reason=str(exc))
    if isinstance(exc, GatewayRequestInvalid):
        # Never sent, and sending it again would fail the same way: a set-up error, backed off.
        return Outcome(OutcomeKind.REJECTED, source, reason=f"rejected locally: {exc}")
    # Gateway errors' messages name endpoints and exception types only; anything else might
    # quote data, so only its type is kept.
    reason = str(exc) if isinstance(exc, GatewayError) else type(exc).__name__
    return Outcome(OutcomeKind.UNKNOWN, source, reason=reason)
