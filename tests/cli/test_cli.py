"""The CLI as users meet it: exit codes, one-line errors, JSON output, same on both databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from billing.cli import customers_cmd, output
from billing.gateway.masking import redact_pans
from tests.cli.conftest import Run


def test_customers_add_list_show_round_trip(run_db: Run) -> None:
    added = run_db("customers", "add", "cus_1", "--email", "ann@example.com", "--name", "Ann",
                   "--locale", "fr", "--timezone", "Europe/Paris", "--json")
    assert added.code == 0, added.err
    assert added.json()["timezone"] == "Europe/Paris"
    run_db("customers", "add", "cus_2", "--email", "bob@example.com", "--name", "Bob")
    listed = run_db("customers", "list", "--json").json()
    assert [c["external_id"] for c in listed] == ["cus_1", "cus_2"]
    assert listed[1]["timezone"] == "America/Toronto"  # BILLING_TIMEZONE default
    shown = run_db("customers", "show", "cus_2", "--json").json()
    assert shown["email"] == "bob@example.com" and shown["cards"] == []
    assert run_db("customers", "show", f"#{listed[0]['id']}", "--json").json()["name"] == "Ann"


@pytest.mark.parametrize("args,message", [
    (["--email", "nope", "--name", "X"], "email: is not a valid email address (got 'nope')"),
    (["--email", "x@y.io", "--name", "X", "--locale", "de"], "locale: must be one of"),
    (["--email", "x@y.io", "--name", "X", "--timezone", "Mars/Base"],
     "unknown IANA timezone 'Mars/Base'"),
])
def test_bad_customer_input_is_one_line_exit_2_and_stores_nothing(
    run_db: Run, args: list[str], message: str
) -> None:
    result = run_db("customers", "add", "cus_x", *args)
    assert result.code == 2
    assert message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert run_db("customers", "list", "--json").json() == []


@pytest.mark.parametrize("external_id,why", [
    ("#1", "must not start with '#'"),
    ("#cus_9", "must not start with '#'"),
    ("cus 1", "must not contain whitespace"),
    (" cus_1", "must not contain whitespace"),
    ("cus_1\n", "must not contain whitespace"),
    ("cus\u00a01", "must not contain whitespace"),
    ("cus\x1b[31m", "must not contain control or invisible characters"),
    ("cus\u202e1", "must not contain control or invisible characters"),
    ("cus\u200b1", "must not contain control or invisible characters"),
    ("6250947000000014", "looks like a card number"),
    ("cus-6250947000000014", "looks like a card number"),
])
def test_external_ids_that_could_name_someone_else_are_refused(
    run_db: Run, external_id: str, why: str
) -> None:
    """'#1' means engine id 1 everywhere a customer is named: as an external id it would send
    charges and cards to whoever has engine id 1. Invisible characters make look-alike ids."""
    assert run_db("customers", "add", "cus_1", "--email", "a@b.io", "--name", "A").code == 0
    result = run_db("customers", "add", external_id, "--email", "x@y.io", "--name", "X")
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert line.startswith("error: external_id: ") and why in line
    assert [c["external_id"] for c in run_db("customers", "list", "--json").json()] == ["cus_1"]


def test_an_external_id_may_contain_hash_after_the_first_character(run_db: Run) -> None:
    added = run_db("customers", "add", "shop#42", "--email", "a@b.io", "--name", "A", "--json")
    assert added.code == 0, added.err
    assert run_db("customers", "show", "shop#42", "--json").json()["id"] == added.json()["id"]


def test_duplicate_customer_is_a_conflict(run_db: Run) -> None:
    assert run_db("customers", "add", "c", "--email", "a@b.io", "--name", "A").code == 0
    again = run_db("customers", "add", "c", "--email", "a@b.io", "--name", "A")
    assert again.code == 2 and "already exists" in again.err


def test_unknown_customer_is_not_found(run_db: Run) -> None:
    result = run_db("customers", "show", "ghost")
    assert result.code == 2 and "no customer 'ghost'" in result.err


PAN = "6250947000000014"


def test_a_card_number_typed_as_a_customer_is_not_echoed(run_db: Run) -> None:
    result = run_db("customers", "show", PAN)
    assert (result.code, result.err.strip()) == (2, "error: no customer '625094******0014'")


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_an_internal_error_quoting_a_card_number_is_redacted(
    run_db: Run, monkeypatch: pytest.MonkeyPatch, debug: list[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError(f"driver said: bad value {PAN} near 'x'")

    monkeypatch.setattr(customers_cmd, "find_customer", broken)
    result = run_db(*debug, "customers", "show", "cus_1")
    assert result.code == 1
    assert PAN not in result.err and "625094******0014" in result.err
    assert "error: internal error: RuntimeError: driver said: bad value" in result.err


def test_plans_validate_apply_list_diff(run_db: Run, plans_dir: Path) -> None:
    assert run_db("plans", "validate", str(plans_dir)).code == 0
    diff = run_db("plans", "diff", str(plans_dir), "--json").json()
    assert {p["change"] for p in diff["plans"]} == {"new"}
    assert run_db("plans", "apply", str(plans_dir)).code == 0
    listed = run_db("plans", "list", "--json").json()
    assert {p["code"] for p in listed} >= {"starter-monthly", "pro-annual", "coffee-weekly"}
    again = run_db("plans", "diff", str(plans_dir), "--json").json()
    assert {p["change"] for p in again["plans"]} == {"unchanged"}


def test_plans_list_shows_setup_fee_retries_and_the_dunning_policy(
    run_db: Run, plans_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_db("plans", "apply", str(plans_dir)).code == 0
    listed = {p["code"]: p for p in run_db("plans", "list", "--json").json()}
    pro, coffee = listed["pro-monthly"], listed["coffee-weekly"]
    assert (pro["setup_fee"], coffee["setup_fee"]) == ("25.00 CAD", None)
    assert pro["retry_schedule"] == ["1d", "3d", "5d", "1w"]  # format_duration: largest unit
    assert coffee["retry_schedule"] == ["12h", "1d", "2d"]
    assert coffee["dunning_policy"] == "strict"
    assert coffee["dunning"] == {
        "steps": [{"after": "0s", "email": "payment_failed"},
                  {"after": "2d", "email": "final_notice"}],
        "final_action": {"after": "4d", "action": "cancel"},
    }
    assert listed["pro-annual"]["dunning"]["final_action"] == {"after": "30d",
                                                               "action": "mark_unpaid"}
    monkeypatch.setattr(output.out, "width", 200)  # a wide terminal: no cell wraps
    table = run_db("plans", "list")
    assert table.code == 0 and "setup fee" in table.out and "retry schedule" in table.out
    [coffee_row] = [line for line in table.out.splitlines() if "coffee-weekly" in line]
    assert "12h, 1d, 2d" in coffee_row and "strict" in coffee_row
    [pro_row] = [line for line in table.out.splitlines() if "pro-monthly" in line]
    assert "25.00 CAD" in pro_row


def test_broken_plan_file_reports_file_line_field_and_exit_2(
    run_db: Run, plans_dir: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "plans"
    shutil.copytree(plans_dir, directory)
    path = directory / "weekly.yaml"
    path.write_text(path.read_text().replace("unit: week", "unit: mnth"))
    result = run_db("plans", "apply", str(directory))
    assert result.code == 2
    assert result.err.strip() == ("error: plans/weekly.yaml:9: plans[0].interval.unit: must be "
                                  "one of day, week, month, year (got 'mnth')")
    assert run_db("plans", "list", "--json").json() == []


def test_commands_refuse_an_unmigrated_database(run: Run, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    result = run("customers", "list")
    assert result.code == 2 and "run `billing db upgrade`" in result.err
    assert run("db", "upgrade").code == 0
    assert run("customers", "list", "--json").json() == []


def test_config_show_masks_secrets_and_names_sources(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IOTPAY_MCH_KEY", "super-secret-key")
    monkeypatch.setenv("BILLING_SMTP_URL", "smtp://mailer:hunter2@mail.example.com:587")
    (tmp_path / "billing.toml").write_text('merchant_email = "shop@example.com"\n'
                                          'database_url = "postgresql://app:pw@db/billing"\n')
    result = run("config", "show", "--json")
    assert result.code == 0
    assert "super-secret-key" not in result.out and "hunter2" not in result.out
    assert ":pw@" not in result.out
    views = {v["name"]: v for v in result.json()}
    assert views["iotpay_mch_key"]["value"] == "********"
    assert views["iotpay_mch_key"]["source"] == "environment IOTPAY_MCH_KEY"
    assert views["smtp_url"]["value"] == "smtp://mailer:***@mail.example.com:587"
    assert views["merchant_email"]["source"] == "config file billing.toml"
    assert views["database_url"]["value"] == "postgresql://app:***@db/billing"
    assert views["timezone"]["source"] == "default"


@pytest.mark.parametrize("database_url,smtp_url,passwords", [
    ("postgresql+psycopg://u:pa/ss@h/db", "smtp://user:p/ss@host:25", ["pa/ss", "p/ss"]),
    ("postgresql://u:p#w@h/db", "smtp://user:p#mail@host", ["p#w", "p#mail"]),
    ("postgresql://u@h/db?sslmode=require&password=qsecret", "smtps://u:sm?tp@host",
     ["qsecret", "sm?tp"]),
    ("postgresql://u:at@sign/s@h/db", "smtp://u:x@y@host:abc", ["at@sign/s", "x@y"]),
], ids=["slash", "hash", "query", "at-sign"])
@pytest.mark.parametrize("json_out", [[], ["--json"]], ids=["table", "json"])
def test_config_show_never_prints_a_tricky_password(
    run: Run, monkeypatch: pytest.MonkeyPatch, database_url: str, smtp_url: str,
    passwords: list[str], json_out: list[str],
) -> None:
    monkeypatch.setenv("BILLING_DATABASE_URL", database_url)
    monkeypatch.setenv("BILLING_SMTP_URL", smtp_url)
    result = run("config", "show", *json_out)
    assert result.code == 0, result.err
    shown = result.out.replace("\n", "").replace("│", "").replace(" ", "")
    for password in passwords:
        assert password not in result.out and password.replace(" ", "") not in shown
    assert "***" in result.out


def test_invalid_setting_is_a_clear_error(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_CHARGE_CONCURRENCY", "many")
    result = run("config", "show")
    assert result.code == 2 and "BILLING_CHARGE_CONCURRENCY" in result.err


def test_bad_now_flag_is_a_usage_error(run: Run) -> None:
    result = run("--now", "yesterday", "config", "show")
    assert result.code == 2 and "not an ISO 8601 instant" in result.err


def test_console_script_and_python_m_agree(tmp_path: Path, plans_dir: Path) -> None:
    directory = tmp_path / "plans"
    shutil.copytree(plans_dir, directory)
    (directory / "pro.yaml").write_text("plans:\n  - code: Bad Code!\n")
    env = {**os.environ, "BILLING_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    for argv in ([sys.executable, "-m", "billing"],
                 [str(Path(sys.executable).parent / "billing")]):
        proc = subprocess.run([*argv, "plans", "validate", str(directory)], cwd=tmp_path,
                              capture_output=True, text=True, env=env, timeout=60, check=False)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert "plans/pro.yaml:2: plans[0].code: must be lowercase letters" in proc.stderr
        assert "plans/pro.yaml:2: plans[0].name: required field is missing" in proc.stderr


TOO_BIG = str(2**31)  # one past the largest id PostgreSQL's integer columns hold
HUGE = "99999999999999999999999"
ID_COMMANDS = [
    ["subscriptions", "show", HUGE],
    ["subscriptions", "show", TOO_BIG],
    ["subscriptions", "show", "0"],
    ["subscriptions", "cancel", HUGE],
    ["subscriptions", "reactivate", HUGE],
    ["subscriptions", "pause", HUGE],
    ["subscriptions", "resume", HUGE],
    ["subscriptions", "change-plan", HUGE, "--quantity", "2"],
    ["events", "--subscription", HUGE],
    ["events", "--invoice", HUGE],
    ["events", "--invoice=-1"],
    ["events", "--invoice", "1_000"],
    ["events", "--subscription", "١"],
    ["events", "--subscription", "9" * 5000],
    ["simulate", "--until", "2026-12-31", "--subscription", HUGE],
    ["customers", "list", "--offset", HUGE],
]


@pytest.mark.parametrize("args", ID_COMMANDS, ids=[" ".join(a)[:60] for a in ID_COMMANDS])
def test_ids_the_schema_cannot_hold_are_user_errors_not_internal_ones(
    run_db: Run, args: list[str]
) -> None:
    result = run_db(*args)
    assert result.code == 2, result.err
    [line] = result.err.strip().splitlines()
    assert line.startswith("error: ") and "must be a whole number from" in line
    assert "internal error" not in line


def test_the_largest_id_is_accepted_and_simply_not_found(run_db: Run) -> None:
    result = run_db("subscriptions", "show", str(2**31 - 1))
    assert (result.code, result.err.strip()) == (2, f"error: no subscription {2**31 - 1}")
    assert run_db("events", "--invoice", str(2**31 - 1), "--json").json() == []


@pytest.mark.parametrize("ref", ["#99999999999999999999", f"#{2**63}", f"#{2**31}", "#0", "#²",
                                 "#١", "#" + "9" * 5000], ids=lambda ref: ref[:24])
def test_an_engine_customer_reference_out_of_range_is_not_found(run_db: Run, ref: str) -> None:
    """Only ASCII digits name an engine id: '#١' (an Arabic-Indic one) must not find #1."""
    assert run_db("customers", "add", "cus_1", "--email", "a@b.io", "--name", "A").code == 0
    result = run_db("customers", "show", ref)
    # Error lines mask 12-19 digit runs as card numbers, long ids included.
    assert (result.code, result.err.strip()) == (2, redact_pans(f"error: no customer {ref!r}"))
