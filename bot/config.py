"""Settings: one validated object built from TOML, environment and defaults.

The service reads its configuration once, at start-up, and passes the result down: there is no
global config (unlike Mailman's `config` registry). Sources, highest priority first:

1. environment variables ``FEEDBACK_<SECTION>__<KEY>`` (e.g. ``FEEDBACK_SMTP__PORT=2525``);
2. the TOML file given with ``--config`` (or ``./feedback-bot.toml`` when present);
3. the defaults below, which make ``make run`` work with nothing configured.

Unknown keys and invalid values fail at start-up with a message naming the key. Secrets are
``SecretStr`` so that they never show up in a log line or a repr.
"""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from handlers import repeats
from handlers.classify.restrict import DEFAULT_THRESHOLD as DEFAULT_RESTRICT_THRESHOLD


def _http_or_empty(v: str) -> str:
    if v and not v.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://, or be empty")
    return v


# A web address to link to or call (the report's page, the SMS gateway), or empty for none.
HttpUrlOrEmpty = Annotated[str, AfterValidator(_http_or_empty)]

DEFAULT_CONFIG_NAME = "feedback-bot.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the offending key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///var/feedback.db"

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://", "postgresql://")):
            raise ValueError("must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://…")
        if v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v.removeprefix("postgresql://")
        return v


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # Signs form tokens, query codes and acknowledgement Message-IDs. Empty: generated once and
    # kept in var/secret_key so that it survives restarts.
    secret_key: SecretStr = SecretStr("")
    max_body_bytes: int = Field(1024 * 1024, ge=10_000)
    trusted_proxies: list[str] = []
    # Citizen side (bot/web/status.py, uploads.py, ratelimit.py). Each public POST is limited per
    # client address by a token bucket that holds this many requests and refills evenly over an
    # hour; status lookups are counted apart (a 6-digit query code must not be guessable).
    submits_per_hour: int = Field(60, ge=1)
    lookups_per_hour: int = Field(30, ge=1)
    # Attachments on the web form: how many, and how large each (checked while reading).
    max_uploads: int = Field(3, ge=0, le=10)
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class SmtpSettings(Section):
    host: str = ""
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    ssl: bool = False
    user: str = ""
    password: SecretStr = SecretStr("")
    from_addr: str = "feedback@localhost"
    # Empty: the commission's name + "群众来信" (see Settings._sender_name).
    from_name: str = ""
    # The host part of our Message-IDs (acknowledgements, replies, digests). Empty: the host of
    # web.public_url. Never derived from from_addr: at a shared provider (163.com) every citizen's
    # Message-ID ends in that domain too. Our own mail is recognised by the HMAC in the local
    # part (handlers/tracking.py), not by this host; it only keeps the IDs globally unique.
    message_id_domain: str = Field(
        "", pattern=r"^$|^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
    timeout: float = Field(30.0, gt=0)
    retry_base_seconds: float = Field(30.0, gt=0)
    # A message that cannot be delivered is retried (backoff: base x 2^attempt, at most 2 h)
    # for retry_hours after it was queued, or max_attempts attempts, whichever comes first;
    # then it fails for good and staff see it (/console/outbox, /healthz).
    max_attempts: int = Field(30, ge=1)
    retry_hours: float = Field(24.0, gt=0)
    # Connections that deliver side by side: one message at a time over one connection waits
    # for the relay's answers, several round trips per message.
    connections: int = Field(4, ge=1, le=20)
    # When the provider throttles us (smtp.163.com's "554 DT:SPM", "450 RP:…", "frequency
    # limited"), the whole outbox pauses this long, doubled for each pause in a row (at most
    # 6 h), instead of spending every message's retries (bot/workers/outbox.py).
    throttle_pause_seconds: float = Field(300.0, gt=0)
    # Sending caps, counted from what the outbox sent in the last minute / day (so they hold
    # across restarts); 0: no cap.
    max_per_minute: int = Field(0, ge=0)
    max_per_day: int = Field(0, ge=0)


class ImapSettings(Section):
    host: str = ""
    port: int = Field(993, ge=1, le=65535)
    ssl: bool = True
    starttls: bool = False
    # PEM file of the CA(s) that signed the server's certificate, for a mail server with a
    # private CA; empty: the system's store. It replaces the system store, and verification of
    # certificate and host name is always on (there is no switch to turn it off). Checked when
    # the poller connects: a missing or broken file is logged as a configuration problem and
    # retried, so fixing the file needs no restart.
    ca_file: str = ""
    user: str = ""
    password: SecretStr = SecretStr("")
    oauth2_token_command: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Processed"
    poll_seconds: float = Field(30.0, gt=0)
    idle: bool = True
    batch_size: int = Field(200, ge=1)


class MaildirSettings(Section):
    path: str = "var/maildir"


class DigestSettings(Section):
    recipients: list[str] = []
    schedule: str = "0 8 * * 1"
    timezone: str = "Asia/Shanghai"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if not croniter.is_valid(v):
            raise ValueError("not a valid cron expression")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("unknown time zone") from exc
        return v


class ClassifierSettings(Section):
    model_dir: str = "var/models"
    review_threshold: float = Field(0.55, ge=0, le=1)
    # A letter whose "report" (举报) probability reaches this is restricted (kept from
    # reviewers); low on purpose, see handlers/classify/restrict.py and the README.
    restrict_threshold: float = Field(DEFAULT_RESTRICT_THRESHOLD, ge=0, le=1)


class IntakeSettings(Section):
    max_attempts: int = Field(3, ge=1)
    retry_base_seconds: float = Field(30.0, gt=0)
    acks_per_sender_per_day: int = Field(3, ge=0)
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    attachments_dir: str = "var/attachments"
    accept_days: int = Field(15, ge=1)
    handle_days: int = Field(60, ge=1)
    tracking_prefix: str = Field("FK", pattern=r"^[A-Z]{0,4}$")
    # Processes that parse, classify and draft acknowledgements for the intake worker
    # (bot/workers/preparer.py); 0 does it in a thread of the service's own process.
    prepare_processes: int = Field(1, ge=0, le=32)
    # `feedback-bot purge` blanks the personal data of submissions closed longer ago than this
    # (three years by default); anonymous statistics stay.
    retention_days: int = Field(1095, ge=1)


class ReportSettings(Section):
    """The published report the service takes feedback on (issue #15 item 12).

    Section 二 of the file at ``path`` becomes the classifier's categories and measures; empty
    means the copy shipped with the project. The file is parsed here, at start, so that a file
    that yields no categories stops the start (and ``check-config``) with a clear message
    instead of failing on the first letter."""

    path: str = ""
    title: str = "南通市委政法委关于巡察整改进展情况的通报"
    # Where the report is published; empty: the pages name it without a link.
    url: HttpUrlOrEmpty = ""

    @field_validator("path")
    @classmethod
    def _parses(cls, v: str) -> str:
        if v:
            from handlers.classify.taxonomy import check_report_file

            check_report_file(Path(v))  # raises ValueError naming what is wrong
        return v


class CommissionSettings(Section):
    """Who runs the service, and the channels its report publishes: shown on the citizen pages
    and signed under every mail. The defaults are the 2021 report's own (its closing lines)."""

    name: str = Field("南通市委政法委", min_length=1)
    phone: str = "85098289"
    address: str = "南通市世纪大道6号"  # the report's 邮政信箱
    mailbox: str = "ntzfwjgdw@163.com"  # the published mailbox, read by [imap] or [maildir]

    @property
    def tel(self) -> str:
        """The phone as a tel: URI's number (RFC 3966 drops the visual separators)."""
        return "".join(c for c in self.phone if c.isdigit() or c == "+")

    @field_validator("mailbox")
    @classmethod
    def _address(cls, v: str) -> str:
        if v and (v.count("@") != 1 or any(c.isspace() or c in "<>\"'" for c in v)):
            raise ValueError("must be a plain e-mail address such as name@163.com, or empty")
        return v


class RepeatSettings(Section):
    """Repeat letters (并单, handlers/repeats.py): which open cases a new letter is linked to.

    ``threshold`` is the exact Jaccard similarity of two letters' character ``ngram``s at which
    they are linked as the same matter (tuned on tests/data/repeat_pairs.jsonl under a bound on
    false links among unrelated letters; bench/repeats_eval.py prints the figures). ``num_perm``
    is the MinHash size; ``window_days`` how far back open cases are compared; ``phone_area``
    the area code given to a phone number typed without one (the commission's city)."""

    threshold: float = Field(repeats.DEFAULT_THRESHOLD, gt=0, le=1)
    num_perm: int = Field(repeats.DEFAULT_NUM_PERM, ge=16, le=1024)
    ngram: int = Field(repeats.DEFAULT_NGRAM, ge=1, le=5)
    window_days: int = Field(repeats.DEFAULT_WINDOW_DAYS, ge=1)
    phone_area: str = Field("0513", pattern=r"^$|^0[1-9]\d{1,2}$")


class CaseworkSettings(Section):
    """Casework (issue #18): the units a case may be forwarded (转办/交办) to, by name. The
    clocks' lengths are the 信访工作条例's (``storage.workflow``; acceptance and handling in
    ``[intake]``).

    A unit is a name, or a table with its name and the address its reminders go to::

        units = ["法院", {name = "公安局", email = "xfb@gaj.example.gov.cn"}]

    A unit without an address: its reminder goes to the case's assignee. The unit is reminded
    ``unit_remind_days`` before its due date. Each morning at ``remind_at`` (a time "08:30" or
    a cron expression, in ``[digest] timezone``; ``remind_workdays`` skips Saturday and Sunday)
    every assignee and supervisor gets one mail of their cases due within ``due_soon_days``
    and those overdue. Reminder mail is held in the outbox during ``quiet_hours``."""

    units: list[str] = Field(
        default_factory=lambda: ["法院", "检察院", "公安局", "司法局", "县区政法委"], min_length=1)
    # Filled from the units given as tables (name → address); may also be given directly.
    unit_emails: dict[str, str] = {}
    unit_remind_days: int = Field(3, ge=0, le=60)
    remind_at: str = "08:30"
    remind_workdays: bool = False
    due_soon_days: int = Field(3, ge=0, le=30)
    quiet_hours: str = Field("20:00-08:00", pattern=r"^$|^\d{2}:\d{2}-\d{2}:\d{2}$")

    @model_validator(mode="before")
    @classmethod
    def _unit_tables(cls, data: Any) -> Any:
        """Units given as ``{name, email}`` tables become a name and an entry of unit_emails."""
        if not isinstance(data, dict) or not isinstance(data.get("units"), list):
            return data
        names: list[Any] = []
        emails = dict(data.get("unit_emails") or {})
        for unit in data["units"]:
            if isinstance(unit, dict):
                extra = set(unit) - {"name", "email"}
                if extra or not isinstance(unit.get("name"), str):
                    raise ValueError("a unit given as a table needs name (and optionally email) "
                                     "only")
                names.append(unit["name"])
                if unit.get("email"):
                    emails[unit["name"].strip()] = unit["email"]
            else:
                names.append(unit)
        return {**data, "units": names, "unit_emails": emails}

    @field_validator("units")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        names = [u.strip() for u in v]
        if any(not u or len(u) > 100 for u in names) or len(set(names)) != len(names):
            raise ValueError("each unit must be a distinct name of 1 to 100 characters")
        return names

    @field_validator("unit_emails")
    @classmethod
    def _addresses(cls, v: dict[str, str]) -> dict[str, str]:
        out = {}
        for name, addr in v.items():
            addr = addr.strip()
            if addr.count("@") != 1 or any(c.isspace() or c in "<>\"',;" for c in addr):
                raise ValueError(f"the address of unit {name!r} is not a plain e-mail address")
            out[name.strip()] = addr
        return out

    @field_validator("remind_at")
    @classmethod
    def _time_or_cron(cls, v: str) -> str:
        cron_of(v, False)  # raises ValueError naming what is wrong
        return v

    @model_validator(mode="after")
    def _known_units(self) -> CaseworkSettings:
        unknown = set(self.unit_emails) - set(self.units)
        if unknown:
            raise ValueError(f"unit_emails names units not in units: {sorted(unknown)}")
        return self

    @property
    def remind_cron(self) -> str:
        """The morning reminder's schedule as a cron expression."""
        return cron_of(self.remind_at, self.remind_workdays)


def cron_of(value: str, workdays: bool) -> str:
    """``"08:30"`` (every day, or Monday to Friday) or a cron expression, as cron."""
    value = value.strip()
    if len(value) == 5 and value[2] == ":" and value.replace(":", "").isdigit():
        hour, minute = int(value[:2]), int(value[3:])
        if hour > 23 or minute > 59:
            raise ValueError("not a time of day (HH:MM)")
        return f"{minute} {hour} * * {'1-5' if workdays else '*'}"
    if not croniter.is_valid(value):
        raise ValueError("must be a time of day (HH:MM) or a cron expression")
    return value


class SmsSettings(Section):
    """The SMS gateway (Aliyun SMS style, the ``SendSms`` action over HTTP): a notice goes as a
    short text to a citizen who left a phone number and no e-mail address. Off while ``url``,
    ``key_id`` or ``template_code`` is empty. The template at the provider takes the
    parameters ``no`` (the tracking number) and ``step`` (what happened)."""

    url: HttpUrlOrEmpty = ""
    key_id: str = ""
    secret: SecretStr = SecretStr("")
    sign_name: str = ""
    template_code: str = ""
    timeout: float = Field(10.0, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.key_id and self.template_code)


class UrgentSettings(Section):
    """Urgent letters (self-harm, violence, a gathering, a danger or crime now; issue #19): an
    alert mail at intake to ``duty`` (addresses of the people on duty), and to the supervisors
    when nobody has taken it in the console within ``alert_minutes``. The alert names the
    tracking number, the category and the console link only (handlers/urgent.py)."""

    duty: list[str] = []
    alert_minutes: int = Field(30, ge=1, le=24 * 60)

    @field_validator("duty")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for addr in v:
            if "@" not in addr or any(c.isspace() for c in addr):
                raise ValueError(f"not an e-mail address: {addr!r}")
        return v


class LogSettings(Section):
    level: str = Field("INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    format: str = Field("auto", pattern=r"^(auto|json|text)$")


class Settings(BaseSettings):
    """Everything the service needs to know, validated once."""

    model_config = SettingsConfigDict(
        env_prefix="FEEDBACK_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    smtp: SmtpSettings = SmtpSettings()
    imap: ImapSettings = ImapSettings()
    maildir: MaildirSettings = MaildirSettings()
    digest: DigestSettings = DigestSettings()
    classifier: ClassifierSettings = ClassifierSettings()
    intake: IntakeSettings = IntakeSettings()
    report: ReportSettings = ReportSettings()
    commission: CommissionSettings = CommissionSettings()
    repeats: RepeatSettings = RepeatSettings()
    casework: CaseworkSettings = CaseworkSettings()
    sms: SmsSettings = SmsSettings()
    urgent: UrgentSettings = UrgentSettings()
    log: LogSettings = LogSettings()
    # Where var/ lives: the SQLite file, outbox .eml files, attachments, models, the secret.
    var_dir: str = "var"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init_settings carries the TOML file's content (see load_settings); env wins over it.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _sender_name(self) -> Settings:
        if not self.smtp.from_name:
            self.smtp.from_name = f"{self.commission.name}群众来信"
        return self

    # -- derived values -------------------------------------------------------------------
    @property
    def report_file(self) -> Path | None:
        """The configured report; None: the copy shipped with the project."""
        return Path(self.report.path) if self.report.path else None

    def path(self, value: str) -> Path:
        """A configured path, relative to the working directory unless absolute."""
        return Path(value)

    @property
    def message_id_domain(self) -> str:
        """The host part of our Message-IDs: ``smtp.message_id_domain``, else public_url's host."""
        if self.smtp.message_id_domain:
            return self.smtp.message_id_domain.lower()
        host = urlsplit(self.web.public_url).hostname or "localhost"
        return f"[{host}]" if ":" in host else host  # an IPv6 literal (RFC 5322 no-fold-literal)

    def secret(self) -> bytes:
        """The signing key: configured, or generated once and kept under var/."""
        configured = self.web.secret_key.get_secret_value()
        if configured:
            return configured.encode()
        key_file = Path(self.var_dir) / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = key_file.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32))
            tmp.chmod(0o600)
            tmp.replace(key_file)
        return key_file.read_text().strip().encode()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"配置文件不存在 / config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix says nothing
            lines.append(f"invalid value for '{key}': {msg}")
    return "; ".join(lines)


def load_settings(path: Path | None = None) -> Settings:
    """Build the settings from ``path`` (or ./feedback-bot.toml if present) and the environment."""
    if path is None and Path(DEFAULT_CONFIG_NAME).exists():
        path = Path(DEFAULT_CONFIG_NAME)
    data = _read_toml(path) if path is not None else {}
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(f"configuration error: {_explain(exc)}") from exc
