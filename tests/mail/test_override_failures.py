"""A merchant's broken override never stops an email, whatever the error: the shipped template
is used and the log names the file and the error class, never the customer's data
(an adversarial review found Latin-1 files, ``1//0`` and type errors escaping)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from billing.templates import OverrideError, render_email

from .conftest import context_for

BROKEN = {
    "latin-1 file": ("subject", "Reçu {{ invoice_number }}".encode("latin-1"),
                     "UnicodeDecodeError"),
    "division by zero": ("html", b"{{ 1//0 }}", "ZeroDivisionError"),
    "wrong type": ("txt", b"{{ customer_name + 1 }}", "TypeError"),
    "attribute of a string": ("subject", b"{{ customer_name.nope() }}", "UndefinedError"),
}


def override(tmp_path: Path, part: str, content: bytes) -> Path:
    folder = tmp_path / "email" / "en"
    folder.mkdir(parents=True)
    (folder / f"payment_succeeded.{part}.j2").write_bytes(content)
    return tmp_path


@pytest.mark.parametrize("case", list(BROKEN))
def test_any_failure_of_an_override_falls_back_to_the_shipped_template(
        case: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    part, content, error = BROKEN[case]
    folder = override(tmp_path, part, content)
    context = context_for("payment_succeeded")
    with caplog.at_level(logging.ERROR, logger="billing.templates"):
        email = render_email("payment_succeeded", context, templates_dir=folder)
    assert email == render_email("payment_succeeded", context)
    [record] = [r for r in caplog.records if r.name == "billing.templates"]
    logged = record.getMessage()
    assert error in logged and "shipped template was used" in logged
    assert f"payment_succeeded.{part}.j2" in logged  # which of the merchant's files failed
    for value in ("Ann O'Neil", "INV-2026-0042", "6250 94"):  # the customer's data: never
        assert value not in logged


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_preview_still_shows_the_merchant_every_such_failure(
        case: str, tmp_path: Path) -> None:
    part, content, error = BROKEN[case]
    folder = override(tmp_path, part, content)
    with pytest.raises(OverrideError, match="your template for 'payment_succeeded'") as caught:
        render_email("payment_succeeded", context_for("payment_succeeded"),
                     templates_dir=folder, strict=True)
    assert type(caught.value.__cause__).__name__ == error
