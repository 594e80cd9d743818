"""The sandbox's gateway logic: authenticate, validate, then act on the in-memory books.

One lock guards every record and every public method takes it, so concurrent requests see a
serial history: that is what makes "at most one charge per (mchId, mchOrderNo)" hold under load.
Methods return the JSON reply plus the notifies to send; the caller hands those to the
``Notifier`` once the lock is released.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from billing.clock import Clock
from billing.gateway.masking import mask_pan
from billing.gateway.sign import sign
from billing.sandbox import cards as tc
from billing.sandbox.decisions import card_problem, decide
from billing.sandbox.ledger import HostedSession, LedgerOrder, LedgerView, Order, Refund, VaultCard
from billing.sandbox.merchants import Merchant
from billing.sandbox.notifier import NotifyJob
from billing.sandbox.validation import authenticate, check_fields

__all__ = ["Processor", "Reply", "SettleRule"]

Reply = tuple[dict[str, Any], list[NotifyJob]]
Fields = Mapping[str, Any]


@dataclass(frozen=True)
class SettleRule:
    """When a ``PENDING_THEN_APPROVE`` order (status 1) settles to 2: once ``after`` has passed on
    the sandbox clock, or at its ``queries``-th ``cc_query``, whichever comes first."""

    after: timedelta = timedelta(minutes=2)
    queries: int = 3


def ok(data: Mapping[str, object], msg: str = "success") -> dict[str, Any]:
    return {"retCode": "SUCCESS", "retMsg": msg, "retData": dict(data)}


def fail(msg: str) -> dict[str, Any]:
    return {"retCode": "FAIL", "retMsg": msg}


def with_params(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class Processor:
    """Cards, orders, refunds and hosted sessions for every configured merchant."""

    def __init__(
        self,
        merchants: Mapping[str, Merchant],
        clock: Clock,
        *,
        settle: SettleRule | None = None,
        zone: str = "America/Toronto",
    ) -> None:
        self.merchants = dict(merchants)
        self.clock = clock
        self.settle = settle or SettleRule()
        self.zone = ZoneInfo(zone)
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every card, order, refund and session; merchants stay."""
        with self.lock:
            self.cards: dict[tuple[str, str], VaultCard] = {}
            self.orders: dict[tuple[str, str], Order] = {}
            self.refunds: dict[tuple[str, str], tuple[Order, Refund]] = {}
            self.by_pay_id: dict[str, Order] = {}
            self.sessions: dict[str, HostedSession] = {}
            self.hosted_tries: dict[tuple[str, str], int] = {}
            self._seq = 0
            self._tag = secrets.token_hex(2).upper()

    def handle(self, endpoint: str, fields: dict[str, Any], root_url: str) -> Reply:
        """Answer one ``/v3/<endpoint>`` call."""
        with self.lock:
            who = authenticate(endpoint, fields, self.merchants)
            if isinstance(who, str):
                return fail(who), []
            problem = check_fields(endpoint, fields)
            if problem is not None:
                return fail(problem), []
            if endpoint in ("cc_addcard", "cc_purchase"):
                return self._open_session(endpoint, who, fields, root_url), []
            reply: Reply = getattr(self, "_" + endpoint.removeprefix("cc_"))(who, fields)
            return reply

    # --- cards ---------------------------------------------------------------------------------

    def _directaddcard(self, m: Merchant, f: Fields) -> Reply:
        problem = self._bind_card(m.mch_id, str(f["cardId"]), f)
        if problem is not None:
            return fail(problem), []
        return ok(self.cards[(m.mch_id, str(f["cardId"]))].wire()), []

    def _bind_card(self, mch_id: str, card_id: str, f: Fields) -> str | None:
        """Validate and vault a card; the CVV is checked, then forgotten. A retMsg on error."""
        number = str(f.get("cardNum", "")).replace(" ", "")
        expiry = str(f.get("expiryDate") or "") or None
        problem = card_problem(number, expiry, str(f.get("cvv", "")), str(f.get("holder", "")))
        if problem is not None:
            return problem
        old = self.cards.get((mch_id, card_id))
        if old is not None and old.number != number:
            return "cardId already bound to another card"
        tried = old.charges_tried if old else 0
        holder = str(f["holder"])
        self.cards[(mch_id, card_id)] = VaultCard(mch_id, card_id, number, expiry, holder, tried)
        return None

    def _querycard(self, m: Merchant, f: Fields) -> Reply:
        card = self.cards.get((m.mch_id, str(f["cardId"])))
        return (fail("card not found"), []) if card is None else (ok(card.wire()), [])

    # --- payments ------------------------------------------------------------------------------

    def _purchasewithtoken(self, m: Merchant, f: Fields) -> Reply:
        existing = self.orders.get((m.mch_id, str(f["mchOrderNo"])))
        if existing is not None:
            return self._order_reply(existing), []
        card = self.cards.get((m.mch_id, str(f["cardId"])))
        if card is None:
            return fail("card not found"), []
        card.charges_tried += 1
        order = self._new_order(m, f, card.number, self._expiry_on_file(card), card.card_id)
        return self._charge(m, order, card.number, card.charges_tried)

    def _expiry_on_file(self, card: VaultCard) -> str | None:
        """The expiry the order reports: the issuer's, which for ``DECLINE_EXPIRED_CARD`` is
        last month whatever was typed when the card was added (a card the issuer has expired)."""
        if tc.behaviour_of(card.number) is tc.Behaviour.EXPIRED:
            local = self.clock.now().astimezone(self.zone)
            year, month = (local.year, local.month - 1) if local.month > 1 else (
                local.year - 1, 12)
            return f"{month:02d}{year % 100:02d}"
        return card.expiry_date

    def _new_order(
        self, m: Merchant, f: Fields, number: str, expiry: str | None, card_id: str | None
    ) -> Order:
        self._seq += 1
        now = self.clock.now()
        order = Order(
            pay_order_id=f"P{now:%y%m%d}{self._tag}{self._seq:08d}", mch_id=m.mch_id,
            mch_order_no=str(f["mchOrderNo"]), mch_user_id=str(f["mchUserId"]), card_id=card_id,
            amount=int(f["amount"]), currency=str(f["currency"]), card_num=mask_pan(number),
            card_type=tc.card_type(number), expiry_date=expiry or "",
            notify_url=str(f["notifyUrl"]), created_at=now, status=0, reason="", seq=self._seq,
        )  # fmt: skip
        self.orders[(m.mch_id, order.mch_order_no)] = order
        self.by_pay_id[order.pay_order_id] = order
        return order

    def _charge(self, m: Merchant, order: Order, number: str, tries: int) -> Reply:
        now = self.clock.now()
        behaviour = tc.behaviour_of(number)
        status, reason = decide(behaviour, order.amount, tries, order.expiry_date, now, self.zone)
        jobs: list[NotifyJob] = []
        if status == 2:
            order.approve(now)
            jobs.append(self._notify(m, order.notify_url, order.wire(self.zone)))
        elif status == 1:
            order.status, order.settle_at = 1, now + self.settle.after
        else:
            order.status, order.reason = 9, reason
        return self._order_reply(order), jobs

    def _order_reply(self, order: Order) -> dict[str, Any]:
        return ok(order.wire(self.zone), order.reason or "success")

    # --- hosted pages --------------------------------------------------------------------------

    def _open_session(self, endpoint: str, m: Merchant, f: Fields, root_url: str) -> dict[str, Any]:
        kind = endpoint.removeprefix("cc_")
        if kind == "purchase" and (m.mch_id, str(f["mchOrderNo"])) in self.orders:
            return fail("duplicate mchOrderNo")
        key = secrets.token_urlsafe(18)
        self.sessions[key] = HostedSession(key, kind, m.mch_id, str(f["returnUrl"]), dict(f))
        url = f"{root_url}/cc/{kind}?{urlencode({'key': key})}"
        return ok({"redirectUrl": url, "secureId": key})

    def session(self, key: str, kind: str) -> HostedSession | None:
        """An open, unused hosted session (what the GET of a hosted page shows)."""
        with self.lock:
            s = self.sessions.get(key)
            return s if s is not None and s.kind == kind and not s.used else None

    def submit_hosted(
        self, key: str, kind: str, form: Mapping[str, str]
    ) -> tuple[str | None, Reply]:
        """The hosted form was posted: store the card or charge it once, then say where the browser
        goes (``returnUrl`` with retCode...). ``None`` when the session is unknown or used."""
        with self.lock:
            s = self.session(key, kind)
            if s is None:
                return None, ({}, [])
            s.used = True
            m = self.merchants[s.mch_id]
            if kind == "addcard":
                problem = self._bind_card(m.mch_id, str(s.fields["cardId"]), form)
                params = (
                    {"retCode": "FAIL", "retMsg": problem} if problem else {"retCode": "SUCCESS"}
                )
                return with_params(s.return_url, params), ({}, [])
            reply = self._charge_hosted(m, s.fields, form)
            return with_params(s.return_url, _return_params(reply[0])), reply

    def _charge_hosted(self, m: Merchant, f: Fields, form: Mapping[str, str]) -> Reply:
        number = form.get("cardNum", "").replace(" ", "")
        expiry = form.get("expiryDate") or None
        problem = card_problem(number, expiry, form.get("cvv", ""), form.get("holder", ""))
        if problem is not None:
            return fail(problem), []
        existing = self.orders.get((m.mch_id, str(f["mchOrderNo"])))
        if existing is not None:
            return self._order_reply(existing), []
        tries = self.hosted_tries.get((m.mch_id, number), 0) + 1
        self.hosted_tries[(m.mch_id, number)] = tries
        return self._charge(m, self._new_order(m, f, number, expiry, None), number, tries)

    # --- refunds and voids ---------------------------------------------------------------------

    def _refund(self, m: Merchant, f: Fields) -> Reply:
        return self._reverse(m, f, "refund")

    def _void(self, m: Merchant, f: Fields) -> Reply:
        return self._reverse(m, f, "void")

    def _reverse(self, m: Merchant, f: Fields, kind: str) -> Reply:
        done = self.refunds.get((m.mch_id, str(f["mchRefundNo"])))
        if done is not None:
            return ok(done[0].refund_wire(done[1], self.zone)), []
        order = self.by_pay_id.get(str(f["payOrderId"]))
        if order is None or order.mch_id != m.mch_id:
            return fail("order not found"), []
        problem = self._reverse_problem(order, kind, f)
        if problem is not None:
            return fail(problem), []
        amount = order.refundable if kind == "void" else int(f["refundAmount"])
        self._seq += 1
        now = self.clock.now()
        refund_id = f"R{now:%y%m%d}{self._tag}{self._seq:08d}"
        refund = Refund(refund_id, str(f["mchRefundNo"]), kind, amount, now, str(f["notifyUrl"]))
        order.refundable -= amount
        order.refunds.append(refund)
        self.refunds[(m.mch_id, refund.mch_refund_no)] = (order, refund)
        wire = order.refund_wire(refund, self.zone)
        return ok(wire), [self._notify(m, refund.notify_url, wire)]

    def _reverse_problem(self, order: Order, kind: str, f: Fields) -> str | None:
        if order.status not in (2, 3) or order.paid_at is None:
            return "order not paid"
        if kind == "refund":
            if int(f["refundAmount"]) > order.refundable:
                return f"refund amount exceeds refundable ({order.refundable})"
            return None
        if order.refundable != order.amount:
            return "void not allowed: order already refunded; use cc_refund"
        today = self.clock.now().astimezone(self.zone).date()
        if order.paid_at.astimezone(self.zone).date() != today:
            return "void allowed only on the day of the payment; use cc_refund"
        return None

    # --- queries and settling ------------------------------------------------------------------

    def _query(self, m: Merchant, f: Fields) -> Reply:
        by_pay_id = f.get("payOrderId") not in (None, "")
        ref = str(f["payOrderId"] if by_pay_id else f["mchOrderNo"])
        order = self.by_pay_id.get(ref) if by_pay_id else self.orders.get((m.mch_id, ref))
        if order is not None and order.mch_id == m.mch_id:
            return self._query_order(m, order)
        for original, refund in self.refunds.values():
            mine = original.mch_id == m.mch_id
            if mine and ref == (refund.pay_order_id if by_pay_id else refund.mch_refund_no):
                return ok(original.refund_wire(refund, self.zone)), []
        return fail("order not found"), []

    def _query_order(self, m: Merchant, order: Order) -> Reply:
        jobs: list[NotifyJob] = []
        if order.status == 1:
            order.queries += 1
            if order.queries >= self.settle.queries:
                jobs = self._settle(m, order)
        return self._order_reply(order), jobs

    def settle_due(self) -> list[NotifyJob]:
        """Settle every pending order whose time has come (a ticker and clock moves call this)."""
        with self.lock:
            now = self.clock.now()
            due = [o for o in self.orders.values()
                   if o.status == 1 and o.settle_at is not None and o.settle_at <= now]  # fmt: skip
            return [job for o in due for job in self._settle(self.merchants[o.mch_id], o)]

    def _settle(self, m: Merchant, order: Order) -> list[NotifyJob]:
        order.approve(self.clock.now())
        return [self._notify(m, order.notify_url, order.wire(self.zone))]

    def mark_notified(self, job: NotifyJob) -> None:
        """A pay notify was acknowledged: status 2 becomes 3 ("success, merchant notified")."""
        if job.body.get("payType") != "pay":
            return
        with self.lock:
            order = self.by_pay_id.get(str(job.body.get("payOrderId")))
            if order is not None and order.status == 2:
                order.status = 3

    def _notify(self, m: Merchant, url: str, wire: dict[str, object]) -> NotifyJob:
        body = dict(wire)
        body["sign"] = sign(body, m.key)
        return NotifyJob(url=url, body=body)

    def ledger(self) -> LedgerView:
        with self.lock:
            ordered = sorted(self.orders.values(), key=lambda o: o.seq)
            return LedgerView(tuple(LedgerOrder.of(o) for o in ordered))


def _return_params(reply: Mapping[str, Any]) -> dict[str, str]:
    """``returnUrl`` parameters after a hosted purchase: unsigned, so only a hint for the UI."""
    data = reply.get("retData") or {}
    status = int(data.get("status", 9)) if reply.get("retCode") == "SUCCESS" else 9
    if status == 9:
        return {"retCode": "FAIL", "retMsg": str(reply.get("retMsg", "declined"))}
    return {"retCode": "SUCCESS", "status": str(status)}
