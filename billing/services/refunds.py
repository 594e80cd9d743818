"""Refunds and voids of paid invoices, with the same intent-before-send discipline as charges.

A refund row (with its own ``mchRefundNo``) is committed in ``sending`` before ``cc_refund`` or
``cc_void`` is called, and it can never exceed what is still refundable: the invoice's paid amount
minus what is refunded or in flight (the schema also refuses ``amount_refunded > amount_paid``).
A refund moves money once, when it first becomes ``succeeded`` - from the response, from its
``payType=refund`` notify or from reconciliation, whichever comes first - and is recorded as a
credit note. Every writer locks the refund row before the invoice row, and starting a refund locks
the invoice, so concurrent refunds can't together exceed what was paid and a reply racing its
notify can't count the same refund twice. Refunds whose outcome is unknown are looked up by
``resolve_due_refunds`` (the reconcile tick) with ``cc_query``, like payment attempts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing.domain.invoices import InvoiceStatus, RefundKind
from billing.domain.money import Money
from billing.domain.payments import (
    FINAL,
    IN_FLIGHT,
    Attempt,
    AttemptState,
    mismatches,
    next_check,
)
from billing.errors import Conflict, InvalidInput, NotFound
from billing.gateway import (
    GatewayError,
    GatewayNotSent,
    GatewayOutcomeUnknown,
    GatewayReply,
    Notify,
    OrderInfo,
    claims_of,
    is_failed,
    is_paid,
)
from billing.services.alerts import raise_alert
from billing.services.claims import claim_rows
from billing.services.emails import queue_refund_issued
from billing.services.events import record_event
from billing.services.installation import new_nonce, order_prefix
from billing.services.isolation import ItemError, clear_failures, not_backed_off, record_failure
from billing.services.ports import Deps, EngineConfig
from billing.store.models import Invoice, PaymentAttempt, Refund
from billing.store.uow import UnitOfWork


@dataclass(frozen=True)
class RefundView:
    id: int
    invoice: str
    kind: str
    amount: str
    state: str
    mch_refund_no: str
    credit_note: str | None
    reason: str | None


def _view(session: Session, refund: Refund) -> RefundView:
    invoice = session.get(Invoice, refund.invoice_id)
    assert invoice is not None
    return RefundView(refund.id, invoice.number, refund.kind,
                      Money(refund.amount, refund.currency).format(), refund.state,
                      refund.mch_refund_no, refund.credit_note_number, refund.reason)


def _of_duplicates(invoice_id: int) -> Any:
    """Refunds of duplicate charges: money that never counted as the invoice's payment."""
    return Refund.payment_attempt_id.in_(select(PaymentAttempt.id).where(
        PaymentAttempt.invoice_id == invoice_id,
        PaymentAttempt.state == AttemptState.DUPLICATE))


def refundable(session: Session, invoice: Invoice) -> int:
    """What may still be refunded: paid, minus refunded, minus refunds still in flight (a
    duplicate charge's refund is not taken from the invoice's payment)."""
    in_flight = session.scalar(select(func.coalesce(func.sum(Refund.amount), 0)).where(
        Refund.invoice_id == invoice.id, Refund.state.in_(IN_FLIGHT),
        ~_of_duplicates(invoice.id)))
    return invoice.amount_paid - invoice.amount_refunded - int(in_flight or 0)


def _find_invoice(session: Session, number: str, *, lock: bool = False) -> Invoice:
    query = select(Invoice).where(Invoice.number == number)
    invoice = session.scalar(query.with_for_update() if lock else query)
    if invoice is None:
        raise NotFound(f"no invoice {number!r}")
    return invoice


def _start(deps: Deps, number: str, kind: RefundKind, amount: int | None,
           reason: str | None) -> tuple[int, str, str, int]:
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        # Locked until the refund row is committed: a concurrent refund waits, then sees it.
        invoice = _find_invoice(session, number, lock=True)
        paid = session.scalar(select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice.id,
            PaymentAttempt.state == AttemptState.SUCCEEDED))
        if invoice.status != InvoiceStatus.PAID or paid is None or paid.pay_order_id is None:
            raise Conflict(f"invoice {number} has no captured payment to {kind}")
        left = refundable(session, invoice)
        if kind == RefundKind.VOID:
            if left != invoice.amount_paid:
                raise Conflict(f"invoice {number} is partly refunded; a void must be whole")
            amount = left
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            shown = Money(left, invoice.currency).format()
            raise InvalidInput(f"refund amount must be between 0.01 and {shown} (refundable)")
        refund = Refund(invoice_id=invoice.id, payment_attempt_id=paid.id, kind=kind,
                        mch_refund_no=f"tmp-{uuid.uuid4().hex[:24]}", amount=amount,
                        currency=invoice.currency, state=AttemptState.SENDING, reason=reason,
                        created_at=at, next_check_at=at + deps.config.send_lease)
        session.add(refund)
        session.flush()
        refund.mch_refund_no = f"{order_prefix(session)}-R{refund.id}-{new_nonce()}"
        record_event(session, at, f"{kind}.started", invoice_id=invoice.id,
                     customer_id=invoice.customer_id, amount=amount,
                     mch_refund_no=refund.mch_refund_no)
        uow.commit()
        return refund.id, refund.mch_refund_no, paid.pay_order_id, amount


def duplicate_refund_number(mch_order_no: str) -> str:
    """The refund number of a duplicate charge, derived from its order number so that it is the
    same however often it is computed: ``D`` + the order number (which carries the installation
    prefix and a nonce; its dash sits one place later than in any order or operator refund
    number, so it can be neither). An order number of 30 characters (the gateway's limit) loses
    its first character, never the ``D`` (without it the refund number would be the order number
    itself) and never its nonce.

    >>> duplicate_refund_number("K3F9QZ-123-01-7M2Q9X")
    'DK3F9QZ-123-01-7M2Q9X'
    >>> duplicate_refund_number("ABCDEFGHI-1234567890123-7M2Q9X")
    'DBCDEFGHI-1234567890123-7M2Q9X'
    """
    return "D" + mch_order_no[-29:]


def refund_duplicate(session: Session, attempt: PaymentAttempt, at: datetime) -> Refund | None:
    """Commit, in the caller's transaction (the one that proves the duplicate), the refund of a
    charge the invoice did not need: state ``sending`` and due now, so the reconcile tick's
    ``resolve_due_refunds`` looks its number up and only then sends it, under that same number
    (exactly once, as every refund). None when the charge has no gateway order id to refund
    against (the caller's alert then asks for a refund by hand)."""
    if attempt.pay_order_id is None:
        return None
    number = duplicate_refund_number(attempt.mch_order_no)
    existing = session.scalar(select(Refund).where(Refund.mch_refund_no == number))
    if existing is not None:
        return existing
    refund = Refund(invoice_id=attempt.invoice_id, payment_attempt_id=attempt.id,
                    kind=RefundKind.REFUND, mch_refund_no=number, amount=attempt.amount,
                    currency=attempt.currency, state=AttemptState.SENDING,
                    reason="duplicate charge: the invoice did not need it", created_at=at,
                    next_check_at=at, check_count=0)
    session.add(refund)
    record_event(session, at, "refund.started", invoice_id=attempt.invoice_id,
                 amount=attempt.amount, mch_refund_no=number, duplicate=attempt.mch_order_no)
    return refund


def _duplicated_order(session: Session, refund: Refund) -> str | None:
    """The order number of the duplicate charge ``refund`` gives back, or None if it refunds
    the invoice's own payment."""
    attempt = session.get(PaymentAttempt, refund.payment_attempt_id)
    duplicate = attempt is not None and attempt.state == AttemptState.DUPLICATE
    return attempt.mch_order_no if duplicate and attempt is not None else None


def _succeeded(session: Session, refund: Refund, at: datetime, pay_order_id: str | None,
               config: EngineConfig) -> None:
    """Money went back: count it once. Even a refund recorded as failed or not sent counts when
    the gateway proves it happened (a success proven by the gateway wins, as for payments);
    if counting it would refund more than was paid, nothing is counted and a person is asked."""
    if refund.state == AttemptState.SUCCEEDED:
        return
    invoice = session.get(Invoice, refund.invoice_id, with_for_update=True)
    assert invoice is not None
    duplicate = _duplicated_order(session, refund)
    if duplicate is None and invoice.amount_refunded + refund.amount > invoice.amount_paid:
        refund.state, refund.next_check_at = AttemptState.UNKNOWN, None
        raise_alert(session, at, "alert.refund_overrun", f"refund_overrun:{refund.id}",
                    invoice_id=invoice.id, customer_id=invoice.customer_id,
                    mch_refund_no=refund.mch_refund_no, amount=refund.amount,
                    already_refunded=invoice.amount_refunded, paid=invoice.amount_paid)
        return
    refund.state, refund.resolved_at = AttemptState.SUCCEEDED, at
    refund.next_check_at = None
    refund.pay_order_id = refund.pay_order_id or pay_order_id
    refund.credit_note_number = f"CN-{refund.id:07d}"
    if duplicate is None:  # a duplicate was never part of the invoice's payment
        invoice.amount_refunded += refund.amount
    # ``duplicate`` names the order refunded (a webhook fact), so a merchant's app can tell a
    # duplicate charge given back from a refund of the invoice.
    record_event(session, at, f"{refund.kind}.succeeded", invoice_id=invoice.id,
                 customer_id=invoice.customer_id, amount=refund.amount,
                 credit_note=refund.credit_note_number, duplicate=duplicate)
    queue_refund_issued(session, config, refund, invoice, at)


def _apply_status(session: Session, refund: Refund, at: datetime, data: OrderInfo | None,
                  message: str, config: EngineConfig) -> None:
    """What the gateway says of a refund: paid (2/3) wins over anything recorded before; failed
    (9) or still pending (0/1) only move a refund that is not final."""
    status = data.status if data is not None else None
    if is_paid(status):
        _succeeded(session, refund, at, data.pay_order_id if data is not None else None,
                   config)
    elif refund.state in FINAL:
        return
    elif is_failed(status):
        refund.state, refund.resolved_at = AttemptState.FAILED, at
        refund.reason, refund.next_check_at = (message or "declined")[:200], None
        record_event(session, at, f"{refund.kind}.failed", invoice_id=refund.invoice_id,
                     mch_refund_no=refund.mch_refund_no, reason=refund.reason,
                     duplicate=_duplicated_order(session, refund))
        _alert_failed(session, refund, at)
    else:
        refund.state = AttemptState.PENDING


def _alert_failed(session: Session, refund: Refund, at: datetime,
                  refused: str | None = None) -> None:
    """A refund the gateway failed is money that did not go back. Nobody else will notice: a
    duplicate's refund was started by the engine (``alert.double_charge`` told the operator it
    needed nothing), and an operator's may fail later, by notify or lookup, long after the
    command answered. Only a person can decide to refund it again, by hand at the gateway.
    ``refused``: the gateway refused a re-send (``retCode=FAIL``); the refund stays unknown."""
    invoice = session.get(Invoice, refund.invoice_id)
    raise_alert(session, at, "alert.refund_failed", f"refund_failed:{refund.mch_refund_no}",
                customer_id=invoice.customer_id if invoice is not None else None,
                invoice_id=refund.invoice_id, mch_refund_no=refund.mch_refund_no,
                amount=refund.amount, reason=refund.reason, refused=refused,
                duplicate=_duplicated_order(session, refund))


def _answer_mismatch(session: Session, refund: Refund, data: OrderInfo, at: datetime) -> bool:
    """A reply or query answer about another refund (another number, amount or currency) is
    never applied: the refund waits for the next lookup and an alert is raised."""
    asked = Attempt(refund.mch_refund_no, refund.amount, refund.currency, refund.state)
    wrong = mismatches(asked, claims_of(data))
    if wrong:
        raise_alert(session, at, "alert.answer_discrepancy",
                    f"answer_discrepancy:{refund.mch_refund_no}", invoice_id=refund.invoice_id,
                    mch_refund_no=refund.mch_refund_no, fields=list(wrong))
    return bool(wrong)


def _record(deps: Deps, refund_id: int, reply: GatewayReply[OrderInfo] | None,
            error: GatewayError | None, *, resend: bool = False) -> RefundView:
    """Record one refund or void call. A ``resend`` (the gateway said it had no such refund)
    that fails or is refused proves nothing about the first request, which may still land: the
    refund stays unresolved instead of becoming final."""
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        session = uow.session
        refund = session.get(Refund, refund_id, with_for_update=True)
        assert refund is not None
        if reply is not None and reply.ok and reply.data is not None:
            if _answer_mismatch(session, refund, reply.data, at):
                if refund.state not in FINAL:
                    refund.state = AttemptState.UNKNOWN
            else:
                _apply_status(session, refund, at, reply.data, reply.ret_msg, deps.config)
        elif refund.state not in FINAL:
            refund.state, why = _unanswered(reply, error, resend=resend)
            refund.reason = why or refund.reason
            if resend and reply is not None and not reply.ok:
                # Stays unknown (the first request may still land) and is looked up again,
                # but the gateway refused to take it: nobody would notice otherwise.
                _alert_failed(session, refund, at, refused=reply.ret_msg[:200] or "refused")
        if refund.state not in FINAL:
            refund.next_check_at = next_check(at, refund.check_count)
        view = _view(session, refund)
        uow.commit()
    return view


def _unanswered(reply: GatewayReply[OrderInfo] | None, error: GatewayError | None, *,
                resend: bool) -> tuple[AttemptState, str | None]:
    """A call that brought no order data: refused (``retCode=FAIL``), never sent, or unknown."""
    if resend or isinstance(error, GatewayOutcomeUnknown) or (reply is None and error is None):
        return AttemptState.UNKNOWN, None
    if isinstance(error, GatewayNotSent):
        return AttemptState.FAILED_NOT_SENT, str(error)
    return AttemptState.FAILED, (reply.ret_msg[:200] if reply is not None else None)


def refund_invoice(deps: Deps, number: str, *, amount: int | None = None,
                   reason: str | None = None, void: bool = False) -> RefundView:
    """Refund (part of) or void a paid invoice; ``resolve_refund`` settles an unknown outcome."""
    kind = RefundKind.VOID if void else RefundKind.REFUND
    refund_id, refund_no, pay_order_id, value = _start(deps, number, kind, amount, reason)
    return _send(deps, refund_id, kind, refund_no, pay_order_id, value)


def _send(deps: Deps, refund_id: int, kind: RefundKind, refund_no: str, pay_order_id: str,
          value: int, *, resend: bool = False) -> RefundView:
    try:
        if kind == RefundKind.VOID:
            reply = deps.gateway.cc_void(mch_refund_no=refund_no, pay_order_id=pay_order_id,
                                         notify_url=deps.config.notify_url)
        else:
            reply = deps.gateway.cc_refund(mch_refund_no=refund_no, pay_order_id=pay_order_id,
                                           refund_amount=value, notify_url=deps.config.notify_url)
    except (GatewayNotSent, GatewayOutcomeUnknown) as exc:
        return _record(deps, refund_id, None, exc, resend=resend)
    return _record(deps, refund_id, reply, None, resend=resend)


def resolve_refund(deps: Deps, refund_id: int) -> RefundView:
    """Settle an unresolved refund: look it up with ``cc_query`` by its ``mchRefundNo`` and apply
    what the gateway says; only if the gateway has no such refund, send it again under the same
    ``mchRefundNo`` (the gateway refunds a ``mchRefundNo`` at most once)."""
    at = deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        refund = uow.session.get(Refund, refund_id)
        if refund is None:
            raise NotFound(f"no refund {refund_id}")
        attempt = uow.session.get(PaymentAttempt, refund.payment_attempt_id)
        assert attempt is not None and attempt.pay_order_id is not None
        args = (refund.kind, refund.mch_refund_no, attempt.pay_order_id, refund.amount)
        if refund.state in FINAL:
            return _view(uow.session, refund)
    try:
        reply = deps.gateway.cc_query(mch_order_no=refund.mch_refund_no)
    except GatewayError:
        return _view_of(deps, refund_id)  # the next check is already scheduled
    if reply.order_not_found:
        return _send(deps, refund_id, *args, resend=True)
    if not reply.ok or reply.data is None:
        return _view_of(deps, refund_id)
    with UnitOfWork(deps.store) as uow:
        locked = uow.session.get(Refund, refund_id, with_for_update=True)
        assert locked is not None
        if not _answer_mismatch(uow.session, locked, reply.data, at):
            _apply_status(uow.session, locked, at, reply.data, reply.ret_msg, deps.config)
        view = _view(uow.session, locked)
        uow.commit()
    return view


def _view_of(deps: Deps, refund_id: int) -> RefundView:
    with UnitOfWork(deps.store) as uow:
        refund = uow.session.get(Refund, refund_id)
        assert refund is not None
        return _view(uow.session, refund)


KIND = "reconcile.refund"


def resolve_due_refunds(deps: Deps, *, at: datetime | None = None,
                        failed: list[ItemError] | None = None) -> int:
    """The reconcile tick's share: every refund still ``sending`` after its lease, or ``pending``
    or ``unknown``, whose next check is due. Moving ``next_check_at`` forward in the claiming
    transaction keeps other daemons off it until then. A refund whose lookup raises is recorded
    and backed off; the others go on."""
    at = at or deps.clock.now()
    with UnitOfWork(deps.store) as uow:
        rows = claim_rows(uow.session, Refund, [
            Refund.state.in_(IN_FLIGHT), Refund.next_check_at <= at,
            not_backed_off(KIND, Refund.id, at),
        ], [Refund.next_check_at, Refund.id], deps.config.batch_size)
        due = []
        for refund in rows:
            refund.next_check_at = next_check(at, refund.check_count)
            refund.check_count += 1
            due.append(refund.id)
        uow.commit()
    for refund_id in due:
        try:
            view = resolve_refund(deps, refund_id)
        except Exception as exc:
            error = record_failure(deps, "reconcile", KIND, refund_id, at, exc)
            if failed is not None:
                failed.append(error)
            continue
        if view.state not in IN_FLIGHT:
            with UnitOfWork(deps.store) as uow:
                clear_failures(uow.session, KIND, [refund_id], at)
                uow.commit()
    return len(due)


def apply_refund_notify(session: Session, notify: Notify, at: datetime,
                        config: EngineConfig) -> str:
    """A ``payType=refund`` notify: settle the refund it names, once, if it agrees with it."""
    refund = session.scalar(select(Refund).where(Refund.mch_refund_no == notify.mch_order_no)
                           .with_for_update())
    why = None
    if refund is None:
        why = "refund notify matches no refund"
    elif (notify.amount, notify.currency) != (refund.amount, refund.currency):
        why = "refund notify amount or currency differs from the refund"
    else:
        original = session.get(PaymentAttempt, refund.payment_attempt_id)
        if notify.original_order_id and original is not None and (
                notify.original_order_id != original.pay_order_id):
            why = "refund notify names another original order"
    if refund is None or why is not None:
        raise_alert(session, at, "alert.notify_discrepancy",
                    f"notify_discrepancy:refund:{notify.pay_order_id}:{notify.mch_order_no}",
                    mch_order_no=notify.mch_order_no, why=why)
        return "discrepancy"
    _apply_status(session, refund, at, notify, "declined (notify)", config)
    return "applied"


def list_refunds(deps: Deps, number: str) -> list[RefundView]:
    with UnitOfWork(deps.store) as uow:
        invoice = _find_invoice(uow.session, number)
        rows = uow.session.scalars(select(Refund).where(Refund.invoice_id == invoice.id)
                                   .order_by(Refund.id))
        return [_view(uow.session, r) for r in rows]
