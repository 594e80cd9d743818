"""The merchant printed on documents comes from settings, each value checked when read."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from billing.documents import merchant_from_settings
from billing.errors import ConfigError
from billing.settings import MAX_LOGO_BYTES, load_settings

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg==")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BILLING_CONFIG", raising=False)


def test_the_merchant_identity_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    logo = tmp_path / "logo.bin"  # the name says nothing: the content decides
    logo.write_bytes(PNG)
    monkeypatch.setenv("BILLING_MERCHANT_NAME", "Maple Cloud")
    monkeypatch.setenv("BILLING_MERCHANT_ADDRESS", "400 rue Saint-Paul O.\\nMontréal QC\n\n")
    monkeypatch.setenv("BILLING_MERCHANT_LOGO", str(logo))
    monkeypatch.setenv("BILLING_GST_HST_NUMBER", "123456789rt0001")
    merchant = merchant_from_settings(load_settings())
    assert merchant.legal_name == "Maple Cloud"  # no legal name: the brand
    assert merchant.address == ("400 rue Saint-Paul O.", "Montréal QC")
    assert merchant.logo == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert (merchant.gst_hst_number, merchant.qst_number) == ("123456789RT0001", None)


def test_an_svg_logo_is_recognised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')
    monkeypatch.setenv("BILLING_MERCHANT_LOGO", str(logo))
    assert (merchant_from_settings(load_settings()).logo or "").startswith("data:image/svg+xml;")


@pytest.mark.parametrize("variable,value,why", [
    ("BILLING_MERCHANT_LOGO", "missing.png", "cannot read missing.png"),
    ("BILLING_MERCHANT_LOGO", "notes.txt", "is not a PNG, JPEG, GIF or SVG image"),
    ("BILLING_MERCHANT_LOGO", "big.png", f"a logo may be {MAX_LOGO_BYTES} at most"),
    ("BILLING_GST_HST_NUMBER", "12345678 RT0001", "must look like 123456789 RT0001"),
    ("BILLING_QST_NUMBER", "123456789 RT0001", "must look like 1234567890 TQ0001"),
    ("BILLING_MERCHANT_ADDRESS", "1\n2\n3\n4\n5\n6\n7", "at most 6 lines"),
    ("BILLING_TEMPLATES_DIR", "nowhere", "nowhere is not a directory"),
])
def test_a_wrong_value_stops_with_one_line_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str,
        why: str) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "big.png").write_bytes(PNG + b"\0" * MAX_LOGO_BYTES)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"setting {variable}: ") and why in str(info.value)
