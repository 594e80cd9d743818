"""What every body shares: requests that refuse unknown fields and NUL characters, and
money as minor units with its currency.
"""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from billing.domain.money import Money


class Request(BaseModel):
    """Every request body: unknown fields refused, and no NUL character in any string
    (PostgreSQL text can't hold one; refused here rather than failing in the driver)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Amount(BaseModel):
    amount: int = Field(description="Integer minor units (cents).")
    currency: str = Field(description="ISO 4217 code.")

    @classmethod
    def of_text(cls, text: str | None) -> Amount | None:
        """From a view's ``12.00 CAD`` (how the CLI's read models carry money)."""
        if not text:
            return None
        value, _, currency = text.strip().partition(" ")
        money = Money.parse(value, currency)
        return cls(amount=money.amount, currency=money.currency)
