"""A made-up but realistic context for every email kind, for ``billing emails preview``.

A merchant editing a template in ``BILLING_TEMPLATES_DIR`` sees it rendered with every key the
engine passes, formatted as the engine formats them (Babel, in the chosen locale), without
needing a customer to decline a card first. The values are fixed, so a preview (and the picture
in docs/emails.md) is the same on every run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from billing.documents.formatting import Formatter

SAMPLE_TZ = "America/Toronto"
_ISSUED = datetime(2026, 3, 1, 14, tzinfo=UTC)
_PERIOD_END = datetime(2026, 4, 1, 4, tzinfo=UTC)
"""April 1, 00:00 in Toronto: the period runs to March 31 for people."""
_URL = "https://billing.example.com/billing"


def sample_context(template: str, locale: str, merchant_name: str) -> dict[str, object]:
    """Every key ``template`` needs, for a customer reading in ``locale``."""
    f = Formatter(locale, "CAD", SAMPLE_TZ)
    card = "6250 94** **** 0014"
    invoice: dict[str, object] = {
        "amount": f.money(8508), "invoice_number": "INV-0000042",
        "update_card_url": f"{_URL}/update-card/7.20260331.5f2c0e9a",
        "pay_url": f"{_URL}/pay/42.20260331.9b1d47c3",
    }
    per_kind: dict[str, dict[str, object]] = {
        "payment_failed": {**invoice, "reason": "Insufficient funds",
                           "next_retry": f.day(_ISSUED + timedelta(days=1))},
        "reminder": {**invoice, "due_date": f.day(_ISSUED)},
        "final_notice": {**invoice, "final_action": "cancel",
                         "final_date": f.day(_ISSUED + timedelta(days=21))},
        "card_expiring": {"card_number": card, "expiry": "04/2026",
                          "update_card_url": invoice["update_card_url"]},
        "payment_succeeded": {"amount": f.money(8508), "invoice_number": "INV-0000042",
                              "period": f"{f.day(_ISSUED)} - "
                                        f"{f.last_day(_PERIOD_END)}",
                              "paid_date": f.day(_ISSUED), "card_number": card},
        "subscription_canceled": {"plan_name": "Pro", "canceled_date": f.day(_ISSUED)},
        "trial_ending": {"plan_name": "Pro", "trial_end_date": f.day(_ISSUED),
                         "amount": f.money(4900), "card_number": card},
        "refund_issued": {"amount": f.money(2000), "invoice_number": "INV-0000042",
                          "credit_note_number": "CN-0000003", "refund_date": f.day(_ISSUED),
                          "card_number": card},
        "plan_changed": {"old_plan": "Starter", "new_plan": "Pro",
                         "effective_date": f.day(_ISSUED), "amount": f.money(4900),
                         "immediate": True},
    }
    return {"merchant_name": merchant_name, "customer_name": "Bo Roy", **per_kind[template]}
