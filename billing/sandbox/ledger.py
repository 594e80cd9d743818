"""What the sandbox remembers, and the ledger view the engine's tests compare against.

Records are plain mutable dataclasses owned by ``Processor`` and only touched under its lock.
``LedgerView`` is an immutable snapshot: for every order, how many times it was *charged*
(approved money movements, at most one by construction) and its refunds. "Exactly one approved
charge per paid invoice" is read from ``LedgerView.charges``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from billing.gateway.masking import mask_pan

__all__ = [
    "HostedSession",
    "LedgerOrder",
    "LedgerRefund",
    "LedgerView",
    "Order",
    "Refund",
    "VaultCard",
]


@dataclass
class VaultCard:
    """A stored card. The full number stays inside the sandbox (it selects the test behaviour);
    the CVV is checked and dropped, never stored."""

    mch_id: str
    card_id: str
    number: str = field(repr=False)
    expiry_date: str | None
    holder: str
    charges_tried: int = 0

    def wire(self) -> dict[str, object]:
        return {
            "cardId": self.card_id,
            "cardNum": mask_pan(self.number),
            "expiryDate": self.expiry_date or "",
            "holder": self.holder,
        }


@dataclass
class Refund:
    pay_order_id: str
    mch_refund_no: str
    kind: str  # "refund" or "void"
    amount: int
    created_at: datetime
    notify_url: str


@dataclass
class Order:
    pay_order_id: str
    mch_id: str
    mch_order_no: str
    mch_user_id: str
    card_id: str | None
    amount: int
    currency: str
    card_num: str
    card_type: str
    expiry_date: str
    notify_url: str
    created_at: datetime
    status: int
    reason: str
    seq: int
    charged: int = 0
    refundable: int = 0
    paid_at: datetime | None = None
    settle_at: datetime | None = None
    queries: int = 0
    refunds: list[Refund] = field(default_factory=list)

    def approve(self, at: datetime) -> None:
        """Record the money movement: the one place ``charged`` grows."""
        self.status, self.reason, self.paid_at = 2, "", at
        self.charged += 1
        self.refundable = self.amount
        self.settle_at = None

    def wire(self, zone: ZoneInfo) -> dict[str, object]:
        """``retData`` / notify fields for the payment."""
        return {
            "payOrderId": self.pay_order_id,
            "mchId": self.mch_id,
            "mchOrderNo": self.mch_order_no,
            "originalOrderId": "",
            "amount": self.amount,
            "currency": self.currency,
            "payType": "pay",
            "refundable": self.refundable,
            "status": self.status,
            "invoiceNum": f"{self.seq:06d}",
            "paySuccTime": _local(self.paid_at, zone),
            "cardNum": self.card_num,
            "cardType": self.card_type,
            "expiryDate": self.expiry_date,
            "authNum": f"{(self.seq * 7919) % 1_000_000:06d}" if self.paid_at else "",
            "transNum": f"{self.seq:012d}",
            "channel": "UPI_EX",
        }

    def refund_wire(self, refund: Refund, zone: ZoneInfo) -> dict[str, object]:
        """Refund fields: its own payOrderId, mchOrderNo = mchRefundNo (inferred), and
        ``refundable`` = what is left on the original order."""
        return {
            **self.wire(zone),
            "payOrderId": refund.pay_order_id,
            "mchOrderNo": refund.mch_refund_no,
            "originalOrderId": self.pay_order_id,
            "amount": refund.amount,
            "payType": "refund",
            "status": 2,
            "paySuccTime": _local(refund.created_at, zone),
        }


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    return "" if at is None else at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class HostedSession:
    """A hosted page opened by ``cc_addcard`` or ``cc_purchase``; ``key`` is its secureId."""

    key: str
    kind: str  # "addcard" or "purchase"
    mch_id: str
    return_url: str
    fields: dict[str, Any]
    used: bool = False


@dataclass(frozen=True)
class LedgerRefund:
    pay_order_id: str
    mch_refund_no: str
    kind: str
    amount: int
    created_at: str


@dataclass(frozen=True)
class LedgerOrder:
    mch_id: str
    mch_order_no: str
    pay_order_id: str
    amount: int
    currency: str
    status: int
    ret_msg: str
    charged: int
    refundable: int
    card_id: str | None
    created_at: str
    refunds: tuple[LedgerRefund, ...]

    @classmethod
    def of(cls, order: Order) -> LedgerOrder:
        refunds = tuple(
            LedgerRefund(
                r.pay_order_id, r.mch_refund_no, r.kind, r.amount, r.created_at.isoformat()
            )
            for r in order.refunds
        )
        return cls(
            order.mch_id, order.mch_order_no, order.pay_order_id, order.amount, order.currency,
            order.status, order.reason, order.charged, order.refundable, order.card_id,
            order.created_at.isoformat(), refunds,
        )  # fmt: skip

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds)


@dataclass(frozen=True)
class LedgerView:
    """A consistent snapshot of every order the sandbox holds, in creation order."""

    orders: tuple[LedgerOrder, ...]

    def charges(self, mch_order_no: str, mch_id: str | None = None) -> int:
        """Approved money movements for one mchOrderNo (0 if the sandbox never saw it)."""
        return sum(
            o.charged
            for o in self.orders
            if o.mch_order_no == mch_order_no and (mch_id is None or o.mch_id == mch_id)
        )

    def order(self, mch_order_no: str, mch_id: str | None = None) -> LedgerOrder | None:
        for o in self.orders:
            if o.mch_order_no == mch_order_no and (mch_id is None or o.mch_id == mch_id):
                return o
        return None

    @property
    def total_charges(self) -> int:
        return sum(o.charged for o in self.orders)

    def to_json(self) -> dict[str, Any]:
        """``GET /admin/ledger``: orders plus ``charges[mchId][mchOrderNo]``, the number the
        crash tests compare with the engine's database."""
        charges: dict[str, dict[str, int]] = {}
        for o in self.orders:
            charges.setdefault(o.mch_id, {})[o.mch_order_no] = o.charged
        return {
            "orders": [_order_json(o) for o in self.orders],
            "charges": charges,
            "totalCharges": self.total_charges,
        }


def _order_json(o: LedgerOrder) -> dict[str, Any]:
    return {
        "mchId": o.mch_id,
        "mchOrderNo": o.mch_order_no,
        "payOrderId": o.pay_order_id,
        "amount": o.amount,
        "currency": o.currency,
        "status": o.status,
        "retMsg": o.ret_msg,
        "charged": o.charged,
        "refundable": o.refundable,
        "refunded": o.refunded,
        "cardId": o.card_id,
        "createdAt": o.created_at,
        "refunds": [
            {"payOrderId": r.pay_order_id, "mchRefundNo": r.mch_refund_no, "kind": r.kind,
             "amount": r.amount, "createdAt": r.created_at}
            for r in o.refunds
        ],
    }  # fmt: skip
