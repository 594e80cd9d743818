"""``billing emails preview``: what a merchant sees before changing a template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from billing.templates import TEMPLATES

from .conftest import Result
from .test_templates import parse_html

NBSP = "\xa0"


@pytest.mark.parametrize("kind", TEMPLATES)
def test_every_kind_previews_in_french_as_html_and_text(
        run_cli: Callable[..., Result], kind: str) -> None:
    html = run_cli("emails", "preview", kind, "--locale", "fr", "--format", "html")
    assert html.code == 0, html.err
    assert html.out.startswith("<!DOCTYPE html>") and '<html lang="fr">' in html.out
    assert "Bonjour Bo Roy," in " ".join(parse_html(html.out).text)
    text = run_cli("emails", "preview", kind, "--locale", "fr", "--format", "txt")
    assert text.code == 0 and text.out.startswith("Subject: ")
    assert "\n\nBonjour Bo Roy,\n" in text.out and "{{" not in text.out


def test_the_preview_uses_the_merchant_identity_and_babel_amounts(
        run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_MERCHANT_NAME", "Bean & Leaf")
    monkeypatch.setenv("BILLING_MERCHANT_ADDRESS", "1 Main St\\nToronto ON")
    fr = run_cli("emails", "preview", "payment_succeeded", "--locale", "fr")
    en = run_cli("emails", "preview", "payment_succeeded", "--locale", "en", "--format", "txt")
    assert "Bean &amp; Leaf" in fr.out and "1 Main St" in fr.out and "Toronto ON" in fr.out
    assert f"85,08{NBSP}$CA" in fr.out
    assert "Subject: Bean & Leaf: receipt for invoice INV-0000042" in en.out
    assert "Amount:    CA$85.08" in en.out


def test_output_writes_a_file(run_cli: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "receipt.html"
    result = run_cli("emails", "preview", "refund_issued", "--output", str(target))
    assert result.code == 0 and result.out.strip() == f"wrote {target}"
    assert "CN-0000003" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize(("args", "message"), [
    (("welcome",), "unknown email 'welcome'; known: payment_failed"),
    (("reminder", "--locale", "de"), "--locale must be one of en, fr (got 'de')"),
    (("reminder", "--format", "pdf"), "--format must be one of html, txt (got 'pdf')"),
])
def test_mistakes_are_one_line_and_exit_2(
        run_cli: Callable[..., Result], args: tuple[str, ...], message: str) -> None:
    result = run_cli("emails", "preview", *args)
    assert result.code == 2 and message in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


def test_a_broken_override_is_shown_with_its_file_and_line(
        run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "mine" / "email" / "fr"
    folder.mkdir(parents=True)
    (folder / "reminder.html.j2").write_text("<p>\n{{ amount | nope }}</p>\n")
    (folder / "payment_failed.subject.j2").write_text("Oups : {{ amount }} refusé\n")
    monkeypatch.setenv("BILLING_TEMPLATES_DIR", str(tmp_path / "mine"))
    broken = run_cli("emails", "preview", "reminder", "--locale", "fr")
    assert broken.code == 2 and "reminder.html.j2:2" in broken.err and "nope" in broken.err
    fine = run_cli("emails", "preview", "payment_failed", "--locale", "fr", "--format", "txt")
    assert fine.code == 0 and fine.out.startswith(f"Subject: Oups : 85,08{NBSP}$CA refusé\n")
