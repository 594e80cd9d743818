"""A card's MMYY expiry: when it stops paying, and what is not an expiry at all."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from billing.domain.cards import card_expired, expiry_end


def test_a_card_pays_through_the_last_day_of_its_month() -> None:
    assert expiry_end("0226") == date(2026, 3, 1)
    assert expiry_end("1226") == date(2027, 1, 1)
    assert not card_expired("0226", datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
    assert card_expired("0226", datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize("text", ["", "1", "1326", "0026", "12²3", "１２２６", "12/6"])
def test_what_is_not_an_mmyy_expiry_proves_nothing(text: str) -> None:
    assert expiry_end(text) is None
    assert not card_expired(text, datetime(2099, 1, 1, tzinfo=UTC))
