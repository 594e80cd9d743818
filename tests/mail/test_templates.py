"""Every email template renders from its documented context, in English and French, as text
and as HTML, and nothing else."""

from __future__ import annotations

import logging
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from jinja2 import meta

from billing.templates import (
    LOCALES,
    PARTS,
    REQUIRED_KEYS,
    TEMPLATE_VERSION,
    TEMPLATES,
    OverrideError,
    Sender,
    TemplateError,
    environment,
    render_email,
)

from .conftest import context_for

NBSP = "\xa0"
SUBJECTS = {
    "en": {
        "payment_failed": "Maple & Co: payment of CA$29.00 failed for invoice INV-2026-0042",
        "reminder": "Reminder: invoice INV-2026-0042 from Maple & Co is still unpaid",
        "final_notice": "Final notice: invoice INV-2026-0042 from Maple & Co",
        "card_expiring": "Maple & Co: your card ending 1234 expires soon",
        "payment_succeeded": "Maple & Co: receipt for invoice INV-2026-0042",
        "subscription_canceled": "Maple & Co: your subscription is canceled",
        "trial_ending": "Maple & Co: your trial ends on January 15, 2026",
        "refund_issued": "Maple & Co: refund of CA$14.50 for invoice INV-2026-0042",
        "plan_changed": "Maple & Co: your plan changes to Pro <Monthly>",
    },
    "fr": {
        "payment_failed": f"Maple & Co : échec du paiement de 29,00{NBSP}$CA pour la facture "
                          "INV-2026-0042",
        "reminder": "Rappel : la facture INV-2026-0042 de Maple & Co est toujours impayée",
        "final_notice": "Dernier avis : facture INV-2026-0042 de Maple & Co",
        "card_expiring": "Maple & Co : votre carte se terminant par 1234 expire bientôt",
        "payment_succeeded": "Maple & Co : reçu pour la facture INV-2026-0042",
        "subscription_canceled": "Maple & Co : votre abonnement est annulé",
        "trial_ending": "Maple & Co : votre essai se termine le 15 janvier 2026",
        "refund_issued": f"Maple & Co : remboursement de 14,50{NBSP}$CA pour la facture "
                         "INV-2026-0042",
        "plan_changed": "Maple & Co : votre forfait devient Pro <Monthly>",
    },
}
GREETING = {"en": "Hello Ann O'Neil,\n\n", "fr": "Bonjour Ann O'Neil,\n\n"}
SIGNOFF = {"en": "Thank you,\nMaple & Co\n", "fr": "Merci,\nMaple & Co\n"}
EVERY = [(t, loc) for t in TEMPLATES for loc in LOCALES]


class _Checked(HTMLParser):
    """Collects links and text; the layout must be well-formed enough to parse."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links += [v or "" for k, v in attrs if k == "href"]
        if tag not in ("meta", "img", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(html: str) -> _Checked:
    parser = _Checked()
    parser.feed(html)
    parser.close()
    assert parser.open == []
    return parser


@pytest.mark.parametrize(("template", "locale"), EVERY)
def test_each_template_renders_subject_text_and_html_in_each_locale(
        template: str, locale: str) -> None:
    email = render_email(template, context_for(template, locale), locale=locale)
    assert email.subject == SUBJECTS[locale][template]
    assert email.template_version == TEMPLATE_VERSION
    assert email.text.startswith(GREETING[locale])
    assert email.text.endswith(SIGNOFF[locale])
    assert "\n\n\n" not in email.text
    for part in (email.subject, email.text, email.html):
        assert "{{" not in part and "{%" not in part and "}}" not in part
    assert f'<html lang="{locale}">' in email.html
    page = parse_html(email.html)
    shown = " ".join(" ".join(page.text).split())
    assert GREETING[locale].strip() in shown
    assert "Maple & Co" in shown


@pytest.mark.parametrize(("template", "locale"), EVERY)
def test_html_escapes_what_customers_and_merchants_typed(template: str, locale: str) -> None:
    html = render_email(template, context_for(template, locale), locale=locale).html
    assert "Maple &amp; Co" in html and "Maple & Co" not in html
    assert "Ann O&#39;Neil" in html
    assert "<Monthly>" not in html
    if "Pro <Monthly>" in context_for(template, locale).values():
        assert "Pro &lt;Monthly&gt;" in html


@pytest.mark.parametrize(("template", "locale"), EVERY)
def test_amounts_and_dates_are_written_for_the_locale(template: str, locale: str) -> None:
    context = context_for(template, locale)
    email = render_email(template, context, locale=locale)
    amount = context.get("amount")
    if isinstance(amount, str):
        assert amount in email.text and amount in " ".join(parse_html(email.html).text)
        assert amount.startswith("CA$") if locale == "en" else amount.endswith(f"{NBSP}$CA")
    dates = [v for k, v in context.items() if k.endswith("_date")]
    for day in dates:
        assert isinstance(day, str) and day in email.text
        assert ("January" in day) if locale == "en" else ("janvier" in day)


@pytest.mark.parametrize("locale", LOCALES)
def test_babel_writes_canadian_dollars_per_locale(locale: str) -> None:
    amount = context_for("reminder", locale)["amount"]
    assert amount == {"en": "CA$29.00", "fr": f"29,00{NBSP}$CA"}[locale]


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_missing_context_key_fails_loudly_naming_it(template: str) -> None:
    context = context_for(template)
    del context["merchant_name"]
    with pytest.raises(TemplateError, match="needs merchant_name"):
        render_email(template, context)


@pytest.mark.parametrize(("template", "locale"), EVERY)
@pytest.mark.parametrize("part", PARTS)
def test_strict_undefined_catches_what_the_key_check_would_miss(
        template: str, locale: str, part: str) -> None:
    context = {**context_for(template, locale), "locale": locale, "sender": Sender("Maple")}
    context.pop("customer_name")
    source = f"email/{locale}/{template}.{part}.j2"
    if part == "subject":
        context.pop("merchant_name")
        with pytest.raises(Exception, match="merchant_name"):
            environment().get_template(source).render(context)
        return
    with pytest.raises(Exception, match="customer_name"):
        environment().get_template(source).render(context)


@pytest.mark.parametrize(("template", "locale"), EVERY)
def test_documented_keys_are_exactly_what_the_template_files_use(
        template: str, locale: str) -> None:
    env = environment()
    used: set[str] = set()
    assert env.loader is not None
    for part in PARTS:
        source = env.loader.get_source(env, f"email/{locale}/{template}.{part}.j2")[0]
        used |= meta.find_undeclared_variables(env.parse(source))
    # ``m`` is the macros module the HTML files import; locale and sender come from render.
    assert used - {"locale", "sender", "m"} == REQUIRED_KEYS[template]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("template", ["payment_failed", "reminder", "final_notice"])
def test_dunning_emails_carry_the_pay_now_and_update_card_links(
        template: str, locale: str) -> None:
    context = context_for(template, locale)
    email = render_email(template, context, locale=locale)
    assert str(context["pay_url"]) in email.text
    assert str(context["update_card_url"]) in email.text
    links = parse_html(email.html).links
    assert links[:2] == [context["pay_url"], context["update_card_url"]]


def test_payment_failed_names_the_amount_reason_retry_date_and_update_link() -> None:
    text = render_email("payment_failed", context_for("payment_failed")).text
    assert "CA$29.00 for invoice INV-2026-0042 from Maple & Co" in text
    assert "Reason: Insufficient funds" in text
    assert "We will try again on January 18, 2026." in text
    assert "https://pay.example.com/cards/update?c=7&t=x" in text


def test_payment_failed_in_french() -> None:
    text = render_email("payment_failed", context_for("payment_failed", "fr"), locale="fr").text
    assert f"débiter votre carte de 29,00{NBSP}$CA pour la facture INV-2026-0042" in text
    assert "Nous réessaierons le 18 janvier 2026." in text


@pytest.mark.parametrize("locale", LOCALES)
def test_payment_failed_without_a_retry_asks_for_new_card_details(locale: str) -> None:
    context = {**context_for("payment_failed", locale), "next_retry": None}
    email = render_email("payment_failed", context, locale=locale)
    assert {"en": "We will not retry this card automatically.",
            "fr": "Nous ne réessaierons pas cette carte automatiquement."}[locale] in email.text
    assert {"en": "try again", "fr": "Nous réessaierons le"}[locale] not in email.text
    assert {"en": "Next attempt", "fr": "Prochaine tentative"}[locale] not in email.html


@pytest.mark.parametrize(("action", "en", "fr"), [
    ("cancel", "your subscription will be canceled on that date",
     "votre abonnement sera annulé à cette date"),
    ("mark_unpaid", "your subscription will be suspended on that date",
     "votre abonnement sera suspendu à cette date"),
    ("leave_past_due", "we will stop retrying your card automatically",
     "nous cesserons de débiter votre carte automatiquement"),
])
def test_final_notice_says_what_will_happen_and_when(action: str, en: str, fr: str) -> None:
    for locale, expected in (("en", en), ("fr", fr)):
        context = {**context_for("final_notice", locale), "final_action": action}
        email = render_email("final_notice", context, locale=locale)
        assert expected in email.text and expected in email.html.replace("&#39;", "'")
        assert str(context["final_date"]) in email.text


def test_final_notice_refuses_an_unknown_action() -> None:
    context = {**context_for("final_notice"), "final_action": "delete_account"}
    with pytest.raises(TemplateError, match="final_action must be one of"):
        render_email("final_notice", context)


def test_card_expiring_shows_the_masked_number_and_expiry() -> None:
    text = render_email("card_expiring", context_for("card_expiring")).text
    assert "6250 94** **** 1234, expires at the end of 02/2026" in text


def test_receipt_lists_invoice_period_amount_and_card() -> None:
    text = render_email("payment_succeeded", context_for("payment_succeeded")).text
    for line in ("Invoice:   INV-2026-0042", "Period:    January 15, 2026 - February 14, 2026",
                 "Amount:    CA$29.00", "Card:      6250 94** **** 1234"):
        assert line in text


@pytest.mark.parametrize("locale", LOCALES)
def test_optional_card_lines_are_left_out_when_there_is_no_card(locale: str) -> None:
    for template in ("refund_issued", "trial_ending"):
        context = {**context_for(template, locale), "card_number": None}
        email = render_email(template, context, locale=locale)
        assert "None" not in email.text and "None" not in email.html
        assert "1234" not in email.text and "1234" not in email.html


@pytest.mark.parametrize("locale", LOCALES)
def test_plan_changed_says_now_or_at_the_period_end(locale: str) -> None:
    later = {**context_for("plan_changed", locale), "immediate": False}
    now = render_email("plan_changed", context_for("plan_changed", locale), locale=locale)
    scheduled = render_email("plan_changed", later, locale=locale)
    phrase = {"en": "at the end of the current period",
              "fr": "à la fin de la période en cours"}[locale]
    assert phrase in scheduled.text and phrase not in now.text


def test_an_unknown_template_is_a_clear_error() -> None:
    with pytest.raises(TemplateError, match="unknown email template 'welcome'; known: "):
        render_email("welcome", {})


def test_a_locale_without_templates_falls_back_to_english() -> None:
    context = context_for("reminder")
    assert render_email("reminder", context, locale="de") == render_email("reminder", context)


def test_the_footer_shows_the_merchant_identity() -> None:
    sender = Sender("Maple & Co", "Maple & Co Inc.", ("1 Main St", "Toronto ON"),
                    "billing@maple.example", "https://maple.example/logo.png")
    html = render_email("payment_succeeded", context_for("payment_succeeded"),
                        sender=sender).html
    for piece in ("Maple &amp; Co Inc.", "1 Main St", "Toronto ON",
                  'href="mailto:billing@maple.example"',
                  '<img src="https://maple.example/logo.png" alt="Maple &amp; Co"'):
        assert piece in html


def test_a_merchant_override_replaces_the_shipped_file(tmp_path: Path) -> None:
    folder = tmp_path / "email" / "fr"
    folder.mkdir(parents=True)
    (folder / "payment_succeeded.subject.j2").write_text("Merci ! Reçu {{ invoice_number }}")
    context = context_for("payment_succeeded", "fr")
    email = render_email("payment_succeeded", context, locale="fr", templates_dir=tmp_path)
    assert email.subject == "Merci ! Reçu INV-2026-0042"
    assert email.text == render_email("payment_succeeded", context, locale="fr").text


def test_a_broken_override_falls_back_to_the_shipped_template_unless_previewing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "email" / "en"
    folder.mkdir(parents=True)
    (folder / "reminder.txt.j2").write_text("Hi {{ customer_nam }}\n")
    context = context_for("reminder")
    with caplog.at_level(logging.ERROR):
        email = render_email("reminder", context, templates_dir=tmp_path)
    assert email == render_email("reminder", context)
    assert "customer_nam" in caplog.text and "shipped template was used" in caplog.text
    with pytest.raises(OverrideError, match=r"reminder\.txt\.j2:1: 'customer_nam' is undefined"):
        render_email("reminder", context, templates_dir=tmp_path, strict=True)


def test_plain_text_is_not_html_escaped_but_html_templates_are() -> None:
    env = environment()
    assert callable(env.autoescape)
    assert env.autoescape("email/en/payment_failed.txt.j2") is False
    assert env.autoescape("email/en/payment_failed.subject.j2") is False
    assert env.autoescape("email/en/payment_failed.html.j2") is True
    assert env.from_string("{{ v }}").render(v="<b>&") == "&lt;b&gt;&amp;"
    text = render_email("plan_changed", context_for("plan_changed")).text
    assert "Pro <Monthly>" in text and "&lt;" not in text


def test_template_files_are_package_resources() -> None:
    for locale in LOCALES:
        folder = resources.files("billing.templates") / "email" / locale
        names = {entry.name for entry in folder.iterdir()}
        assert {f"{t}.{part}.j2" for t in TEMPLATES for part in PARTS} <= names
