"""Effective settings: defaults, then an optional TOML config file, then environment variables.

Names in the environment are the documented ones (``BILLING_DATABASE_URL``, ``IOTPAY_MCH_KEY``...);
the config file uses the lower-case field names. Secrets are ``SecretStr`` and ``describe`` masks
them, and passwords inside URLs, so ``billing config show`` can never print the merchant key.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from billing.domain.calendar import zone
from billing.domain.subscriptions import LifecyclePolicy, OnStop
from billing.errors import ConfigError, InvalidInput

CONFIG_ENV = "BILLING_CONFIG"
DEFAULT_CONFIG_FILE = Path("billing.toml")

ENV_NAMES: dict[str, str] = {
    "database_url": "BILLING_DATABASE_URL",
    "plans_dir": "BILLING_PLANS_DIR",
    "timezone": "BILLING_TIMEZONE",
    "public_url": "BILLING_PUBLIC_URL",
    "http_host": "BILLING_HTTP_HOST",
    "http_port": "BILLING_HTTP_PORT",
    "smtp_url": "BILLING_SMTP_URL",
    "merchant_email": "BILLING_MERCHANT_EMAIL",
    "merchant_name": "BILLING_MERCHANT_NAME",
    "outbox_dir": "BILLING_OUTBOX_DIR",
    "charge_concurrency": "BILLING_CHARGE_CONCURRENCY",
    "iotpay_base_url": "IOTPAY_BASE_URL",
    "iotpay_mch_id": "IOTPAY_MCH_ID",
    "iotpay_mch_key": "IOTPAY_MCH_KEY",
    "iotpay_login_name": "IOTPAY_LOGIN_NAME",
    "iotpay_connect_timeout": "IOTPAY_CONNECT_TIMEOUT",
    "iotpay_read_timeout": "IOTPAY_READ_TIMEOUT",
    "on_cancel": "BILLING_ON_CANCEL",
    "on_pause": "BILLING_ON_PAUSE",
    "state_dir": "BILLING_STATE_DIR",
    "merchant_legal_name": "BILLING_MERCHANT_LEGAL_NAME",
    "merchant_address": "BILLING_MERCHANT_ADDRESS",
    "merchant_logo": "BILLING_MERCHANT_LOGO",
    "gst_hst_number": "BILLING_GST_HST_NUMBER",
    "qst_number": "BILLING_QST_NUMBER",
    "templates_dir": "BILLING_TEMPLATES_DIR",
    "report_weekly": "BILLING_REPORT_WEEKLY",
    "trial_ending_notice_days": "BILLING_TRIAL_ENDING_NOTICE_DAYS",
    "email_logo_url": "BILLING_EMAIL_LOGO_URL",
    # The merchant JSON API (billing.api): where /healthz and /metrics go when apart.
    "internal_host": "BILLING_INTERNAL_HOST",
    "internal_port": "BILLING_INTERNAL_PORT",
}

SANDBOX_DEFAULTS: dict[str, Any] = {
    "database_url": "sqlite:///billing-sandbox.db",
    "outbox_dir": Path("outbox-sandbox"),
}
"""What ``--sandbox`` changes unless the setting is given explicitly: the sandbox's data lives
apart from real data, so sandbox runs never charge (and email) real customers, and real runs
never see demo ones."""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/billing``, else ``~/.local/state/billing`` (the XDG default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(base) / "billing"


def _env(field: str) -> Any:
    return AliasChoices(ENV_NAMES[field], field)


class Settings(BaseSettings):
    """Everything the engine reads from its environment."""

    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    database_url: str = Field("sqlite:///billing.db", validation_alias=_env("database_url"))
    plans_dir: Path = Field(Path("plans"), validation_alias=_env("plans_dir"))
    timezone: str = Field("America/Toronto", validation_alias=_env("timezone"))
    public_url: str = Field("http://127.0.0.1:8080", validation_alias=_env("public_url"))
    http_host: str = Field("127.0.0.1", validation_alias=_env("http_host"))
    http_port: int = Field(8080, ge=0, le=65535, validation_alias=_env("http_port"))
    smtp_url: SecretStr | None = Field(None, validation_alias=_env("smtp_url"))
    merchant_email: str = Field("billing@example.com", validation_alias=_env("merchant_email"))
    merchant_name: str = Field("Your merchant", max_length=80,
                               validation_alias=_env("merchant_name"))
    outbox_dir: Path = Field(Path("outbox"), validation_alias=_env("outbox_dir"))
    charge_concurrency: int = Field(16, ge=1, le=256, validation_alias=_env("charge_concurrency"))
    iotpay_base_url: str = Field(
        "https://ccapi.iotpaycloud.com/v3/", validation_alias=_env("iotpay_base_url")
    )
    iotpay_mch_id: str | None = Field(None, max_length=30, validation_alias=_env("iotpay_mch_id"))
    iotpay_mch_key: SecretStr | None = Field(None, validation_alias=_env("iotpay_mch_key"))
    iotpay_login_name: str | None = Field(
        None, max_length=12, validation_alias=_env("iotpay_login_name")
    )
    iotpay_connect_timeout: float = Field(
        5.0, gt=0, validation_alias=_env("iotpay_connect_timeout")
    )
    iotpay_read_timeout: float = Field(30.0, gt=0, validation_alias=_env("iotpay_read_timeout"))
    on_cancel: OnStop = Field(OnStop.UNCOLLECTIBLE, validation_alias=_env("on_cancel"))
    """Open invoices of a subscription canceled now: written off, or kept open (not charged)."""
    on_pause: OnStop = Field(OnStop.KEEP_OPEN, validation_alias=_env("on_pause"))
    """Open invoices of a paused subscription: kept open (charged again on resume), or written
    off."""

    state_dir: Path = Field(default_factory=default_state_dir, validation_alias=_env("state_dir"))
    report_weekly: bool = Field(False, validation_alias=_env("report_weekly"))
    """Also email the previous week's report every Monday (the monthly one is always sent)."""

    # The merchant's identity, printed on invoices and credit notes (billing.documents).
    merchant_legal_name: str | None = Field(None, min_length=1, max_length=200,
                                            validation_alias=_env("merchant_legal_name"))
    """The registered name, when it differs from ``merchant_name`` (the brand)."""
    merchant_address: str | None = Field(None, max_length=400,
                                         validation_alias=_env("merchant_address"))
    """Postal address, one line per line of text (at most ``MAX_ADDRESS_LINES``)."""
    merchant_logo: Path | None = Field(None, validation_alias=_env("merchant_logo"))
    """A PNG, JPEG, GIF or SVG file, embedded in HTML and PDF documents as a data URI."""
    gst_hst_number: str | None = Field(None, validation_alias=_env("gst_hst_number"))
    qst_number: str | None = Field(None, validation_alias=_env("qst_number"))
    templates_dir: Path | None = Field(None, validation_alias=_env("templates_dir"))
    """Where a merchant's own document templates override the shipped ones, file by file."""
    # Customer emails (docs/emails.md).
    trial_ending_notice_days: int = Field(3, ge=0, le=60,
                                          validation_alias=_env("trial_ending_notice_days"))
    email_logo_url: str | None = Field(None, max_length=500, pattern=r"^https://\S+$",
                                       validation_alias=_env("email_logo_url"))

    # The merchant JSON API (billing.api).
    internal_host: str = Field("127.0.0.1", validation_alias=_env("internal_host"))
    internal_port: int | None = Field(None, ge=0, le=65535,
                                      validation_alias=_env("internal_port"))
    """When set, ``/healthz`` and ``/metrics`` are served only on this port (of
    ``internal_host``), not on the public one that serves the API and the gateway's notifies."""

    def lifecycle(self) -> LifecyclePolicy:
        return LifecyclePolicy(on_cancel=self.on_cancel, on_pause=self.on_pause)

    @field_validator("merchant_address")
    @classmethod
    def _address_lines(cls, value: str | None) -> str | None:
        return None if value is None else check_address(value)

    @field_validator("merchant_logo")
    @classmethod
    def _logo_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            logo_type(value)
        return value

    @field_validator("gst_hst_number", "qst_number")
    @classmethod
    def _registration(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        pattern, example = REGISTRATIONS[info.field_name or ""]
        number = " ".join(value.upper().split())
        if not pattern.fullmatch(number.replace(" ", "")):
            raise ValueError(f"must look like {example} (got {value!r})")
        return number

    @field_validator("templates_dir")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{value} is not a directory")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def notify_url(self) -> str:
        """Where the gateway posts signed notifications for this engine."""
        return self.public_url.rstrip("/") + "/iotpay/notify"


MAX_ADDRESS_LINES = 6
MAX_LOGO_BYTES = 512 * 1024
"""A logo is embedded in every document it appears on; a photograph by mistake is refused."""
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg",
              b"GIF87a": "image/gif", b"GIF89a": "image/gif"}
REGISTRATIONS = {
    "gst_hst_number": (re.compile(r"[0-9]{9}RT[0-9]{4}"), "123456789 RT0001"),
    "qst_number": (re.compile(r"[0-9]{10}TQ[0-9]{4}"), "1234567890 TQ0001"),
}
"""The CRA's business number with its GST/HST program account (RT), and Revenu Québec's QST
number (TQ): printed on every taxed invoice, so a typo is caught when it is configured."""


def check_address(value: str) -> str:
    """An address as lines: ``\\n`` typed in an environment variable counts as a line break."""
    lines = [line.strip() for line in value.replace("\\n", "\n").splitlines() if line.strip()]
    if not lines:
        raise ValueError("must not be empty")
    if len(lines) > MAX_ADDRESS_LINES:
        raise ValueError(f"must have at most {MAX_ADDRESS_LINES} lines (got {len(lines)})")
    return "\n".join(lines)


def logo_type(path: Path) -> str:
    """The media type of a logo file, read from its first bytes; ``ValueError`` if it is not a
    readable PNG, JPEG, GIF or SVG of at most ``MAX_LOGO_BYTES``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_LOGO_BYTES:
        raise ValueError(f"{path} is {len(data)} bytes; a logo may be {MAX_LOGO_BYTES} at most")
    for magic, media in LOGO_TYPES.items():
        if data.startswith(magic):
            return media
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
        return "image/svg+xml"
    raise ValueError(f"{path} is not a PNG, JPEG, GIF or SVG image")


def config_file() -> Path | None:
    """The config file in effect: ``$BILLING_CONFIG``, else ``./billing.toml`` if present."""
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one clear ``ConfigError``."""
    path = config_file()
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} (from ${CONFIG_ENV}) does not exist")
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = ENV_NAMES.get(field, field)
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"setting {name}: {msg}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def is_explicit(settings: Settings, name: str) -> bool:
    """Whether a setting was given (flag, environment or config file) rather than defaulted."""
    return name in settings.model_fields_set


def with_sandbox_defaults(settings: Settings) -> Settings:
    """``settings`` for ``--sandbox``: every ``SANDBOX_DEFAULTS`` setting not given explicitly
    takes its sandbox value."""
    return settings.model_copy(update={name: value for name, value in SANDBOX_DEFAULTS.items()
                                       if not is_explicit(settings, name)})


_SECRET_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
"""Query parameters whose value is a secret: libpq's ``password`` and ``sslpassword``, and kin."""
_SECRET_QUERY_VALUE = re.compile(r"([?&][^=&]*(?:pass|pwd|secret|token)[^=&]*=)[^&]*",
                                 re.IGNORECASE)
MASK = "***"


def mask_url(url: str) -> str:
    """The URL with its password, and any password-like query value, replaced by ``***``.

    Parsed with SQLAlchemy's ``make_url``, the parser the database URL is given to, so what is
    hidden is exactly what the driver would receive as the password, whatever it holds: ``/``,
    ``#`` or ``?`` in a password made ``urllib``'s generic parser show it in part or whole. It
    reads SMTP URLs the same way. A URL with nothing to hide is returned exactly as written;
    anything ``make_url`` can't parse, or may misread (more than one ``@``), is masked by
    ``_mask_loosely``, which errs toward hiding too much.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _mask_loosely(url)
    if url.count("@") > 1:  # an unescaped '@' in the password: make_url splits at the first
        return _mask_loosely(url)
    secret_keys = [key for key in parsed.query if _SECRET_KEY.search(key)]
    if parsed.password is None and not secret_keys:
        return url
    # A placeholder, swapped for the mask after rendering, which would percent-encode '***'.
    placeholder = f"masked{uuid.uuid4().hex}"
    masked = parsed.update_query_dict({key: placeholder for key in secret_keys})
    return masked.render_as_string(hide_password=True).replace(placeholder, MASK)


def _mask_loosely(text: str) -> str:
    """For values that are not parseable URLs: everything between the first ``:`` after the
    user name and the last ``@`` is the password, and so are secret-looking query values."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    return scheme + sep + _SECRET_QUERY_VALUE.sub(lambda m: m.group(1) + MASK, rest)


@dataclass(frozen=True)
class SettingView:
    name: str
    env: str
    value: str
    source: str


def describe(settings: Settings, overrides: set[str] | None = None) -> list[SettingView]:
    """Every setting with a printable (masked) value and where it came from."""
    path = config_file()
    from_file: dict[str, Any] = {}
    if path is not None:
        from_file = TomlConfigSettingsSource(Settings, toml_file=path)()
    from_env = EnvSettingsSource(Settings)()
    views = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in (overrides or set()):
            source = "command-line flag"
        elif name in from_env or ENV_NAMES[name] in from_env:
            source = f"environment {ENV_NAMES[name]}"
        elif name in from_file or ENV_NAMES[name] in from_file:
            source = f"config file {path}"
        elif name in SANDBOX_DEFAULTS and value == SANDBOX_DEFAULTS[name]:
            source = "default with --sandbox"
        else:
            source = "default"
        views.append(SettingView(name, ENV_NAMES[name], _printable(name, value), source))
    return views


def _printable(name: str, value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return mask_url(secret) if "://" in secret else "********"
    if name.endswith("_url"):
        return mask_url(str(value))
    return str(value)
