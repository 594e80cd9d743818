"""Every email template renders from its documented context, and nothing else."""

from __future__ import annotations

from importlib import resources

import pytest
from jinja2 import meta

from billing.templates import (
    REQUIRED_KEYS,
    TEMPLATE_VERSION,
    TEMPLATES,
    TemplateError,
    environment,
    render_email,
)

from .conftest import context_for

SUBJECTS = {
    "payment_failed": "Maple & Co: payment of 29.00 CAD failed for invoice INV-2026-0042",
    "reminder": "Reminder: invoice INV-2026-0042 from Maple & Co is still unpaid",
    "final_notice": "Final notice: invoice INV-2026-0042 from Maple & Co",
    "card_expiring": "Maple & Co: your card ending 1234 expires soon",
    "payment_succeeded": "Maple & Co: receipt for invoice INV-2026-0042",
}


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_renders_its_subject_and_a_friendly_body(template: str) -> None:
    email = render_email(template, context_for(template))
    assert email.subject == SUBJECTS[template]
    assert email.template_version == TEMPLATE_VERSION
    assert email.text.startswith("Hello Ann O'Neil,\n\n")
    assert email.text.endswith("Thank you,\nMaple & Co\n")
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_missing_context_key_fails_loudly_naming_it(template: str) -> None:
    context = context_for(template)
    del context["merchant_name"]
    with pytest.raises(TemplateError, match="needs merchant_name"):
        render_email(template, context)


@pytest.mark.parametrize("template", TEMPLATES)
def test_strict_undefined_catches_what_the_key_check_would_miss(template: str) -> None:
    source = f"email/en/{template}.txt.j2"
    context = context_for(template)
    context.pop("customer_name")
    with pytest.raises(Exception, match="customer_name"):
        environment().get_template(source).render(context)


@pytest.mark.parametrize("template", TEMPLATES)
def test_documented_keys_are_exactly_what_the_template_files_use(template: str) -> None:
    env = environment()
    used: set[str] = set()
    for part in ("subject", "txt"):
        assert env.loader is not None
        source = env.loader.get_source(env, f"email/en/{template}.{part}.j2")[0]
        used |= meta.find_undeclared_variables(env.parse(source))
    assert used == REQUIRED_KEYS[template]


def test_payment_failed_names_the_amount_reason_retry_date_and_update_link() -> None:
    text = render_email("payment_failed", context_for("payment_failed")).text
    assert "29.00 CAD for invoice INV-2026-0042 from Maple & Co" in text
    assert "Reason: Insufficient funds" in text
    assert "We will try again on January 18, 2026." in text
    assert "https://pay.example.com/cards/update?c=7&t=x" in text


def test_payment_failed_without_a_retry_asks_for_new_card_details() -> None:
    context = {**context_for("payment_failed"), "next_retry": None}
    text = render_email("payment_failed", context).text
    assert "We will not retry this card automatically." in text
    assert "try again" not in text


@pytest.mark.parametrize(("action", "expected"), [
    ("cancel", "your subscription will be canceled on that date"),
    ("mark_unpaid", "your subscription will be suspended on that date"),
    ("leave_past_due", "we will stop retrying your card automatically"),
])
def test_final_notice_says_what_will_happen_and_when(action: str, expected: str) -> None:
    context = {**context_for("final_notice"), "final_action": action}
    text = render_email("final_notice", context).text
    assert expected in text
    assert "January 29, 2026" in text


def test_final_notice_refuses_an_unknown_action() -> None:
    context = {**context_for("final_notice"), "final_action": "delete_account"}
    with pytest.raises(TemplateError, match="final_action must be one of"):
        render_email("final_notice", context)


def test_card_expiring_shows_the_masked_number_and_expiry() -> None:
    text = render_email("card_expiring", context_for("card_expiring")).text
    assert "6250 94** **** 1234, expires at the end of 02/2026" in text


def test_receipt_lists_invoice_period_amount_and_card() -> None:
    text = render_email("payment_succeeded", context_for("payment_succeeded")).text
    for line in ("Invoice:   INV-2026-0042", "Period:    January 15 - February 14, 2026",
                 "Amount:    29.00 CAD", "Card:      625094******1234"):
        assert line in text


def test_an_unknown_template_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="unknown email template 'welcome'; known: "):
        render_email("welcome", {})


def test_a_locale_without_its_own_template_falls_back_to_english() -> None:
    context = context_for("reminder")
    assert render_email("reminder", context, locale="fr") == render_email("reminder", context)


def test_plain_text_is_not_html_escaped_but_html_templates_would_be() -> None:
    env = environment()
    assert callable(env.autoescape)
    assert env.autoescape("email/en/payment_failed.txt.j2") is False
    assert env.autoescape("email/en/payment_failed.subject.j2") is False
    assert env.autoescape("email/en/payment_failed.html.j2") is True
    assert env.autoescape("email/en/payment_failed.xml.j2") is True
    assert env.from_string("{{ v }}").render(v="<b>&") == "&lt;b&gt;&amp;"


def test_template_files_are_package_resources() -> None:
    folder = resources.files("billing.templates") / "email" / "en"
    names = {entry.name for entry in folder.iterdir()}
    assert {f"{t}.{part}.j2" for t in TEMPLATES for part in ("subject", "txt")} <= names
