"""Settings from the environment, validated once, failing with one clear line."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.webhook_settings import WebhookSettings, load_webhook_settings


class SettingsError(Exception):
    """A missing or invalid setting; the message is one line meant for the operator."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range ({low}..{high})")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (true/false)")


def _intervals(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = env.get(name)
    if not raw:
        return default
    try:
        values = tuple(int(v) for v in raw.split(","))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be comma-separated seconds, e.g. 30,120,600") from None
    if not values or any(v < 0 for v in values):
        raise SettingsError(f"{name}={raw!r} must be comma-separated non-negative seconds")
    return values


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise SettingsError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str | None
    public_base_url: str
    organization_name: str
    cert_validity_months: int
    notice_days: int
    renewal_window_days: int
    timezone: str
    backdate_seconds: int
    key_algorithm: str
    root_validity_years: int
    issuing_validity_years: int
    crl_validity_hours: int
    crl_republish_minutes: int
    ocsp_validity_minutes: int
    ocsp_responder_days: int
    expiry_scan_cron: str
    max_body_bytes: int
    gunicorn_workers: int
    gunicorn_threads: int
    gunicorn_timeout: int
    log_level: str
    smtp_host: str
    smtp_port: int
    smtp_starttls: bool
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)
    mail_from: str
    mail_retry_intervals: tuple[int, ...]
    clock_offset_file: Path | None
    passphrase_value: str | None = field(repr=False)
    passphrase_file: Path | None = None
    # limits against a compromised front end and a hostile network (docs/operations.md)
    db_statement_timeout_ms: int = 30_000
    db_lock_timeout_ms: int = 10_000
    frontend_revocations_per_org_hour: int = 20
    frontend_issuances_per_org_hour: int = 50
    auth_failure_limit: int = 20
    auth_failure_window_seconds: int = 300
    token_rotation_grace_hours: int = 24
    trusted_proxies: tuple[str, ...] = ()
    metrics_allowed: tuple[str, ...] = ("127.0.0.0/8", "::1")
    health_bind: str | None = None  # HOST:PORT of the arbiter's liveness listener (config/health_listener.py)
    scheduler_lease_seconds: int = 30  # a standby scheduler takes over this long after the active one dies
    integrity_key_file: Path | None = None  # CA_INTEGRITY_KEY_FILE; default CA_DATA_DIR/integrity.key (pki/integrity.py)
    audit_checkpoint_file: Path | None = None  # CA_AUDIT_CHECKPOINT_FILE; default CA_DATA_DIR/audit/checkpoints.log
    crl_overdue_minutes: int = 10  # a revocation not on the CRL this long: alert and /readyz
    worker_heartbeat_seconds: int = 30  # CA_WORKER_HEARTBEAT_SECONDS: a worker silent longer (+5 s) is dead
    root_passphrase_value: str | None = field(default=None, repr=False)
    root_passphrase_file: Path | None = None
    dev_mode: bool = False  # `ca-service dev`: the root may share the online keys' passphrase
    key_backend: str = "file"
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_pin_file: Path | None = None
    # the help desk's web console (docs/operations.md "Operator console")
    console_secret_value: str | None = field(default=None, repr=False)
    console_secret_file: Path | None = None
    dual_control: bool = False
    console_session_minutes: int = 15
    console_lockout_failures: int = 5
    console_lockout_minutes: int = 15
    console_login_attempts_per_minute: int = 10
    console_secure_cookies: bool = True
    # one-time enrolment codes for EST simpleenroll (docs/est.md)
    enrolment_code_minutes: int = 60
    # lifecycle events to the front end (config/webhook_settings.py)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    def console_secret(self) -> bytes | None:
        """The key signing console session cookies and CSRF tokens, the same on every gunicorn
        worker and node (CA_CONSOLE_SECRET_KEY[_FILE]); None: the console is switched off."""
        if not (self.console_secret_value or self.console_secret_file):
            return None
        return _passphrase("CA_CONSOLE_SECRET_KEY", self.console_secret_value, self.console_secret_file, "the console secret key")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def audit_checkpoint_path(self) -> Path:
        return self.audit_checkpoint_file or self.data_dir / "audit" / "checkpoints.log"

    @property
    def integrity_key_path(self) -> Path:
        return self.integrity_key_file or self.data_dir / "integrity.key"

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"

    def key_passphrase(self) -> bytes:
        """The online CA keys' passphrase (issuing CAs, OCSP responders); read on demand so
        commands that need no key do not require it."""
        return _passphrase("CA_KEY_PASSPHRASE", self.passphrase_value, self.passphrase_file, "the CA key passphrase")

    def has_root_passphrase(self) -> bool:
        return bool(self.root_passphrase_value or self.root_passphrase_file or self.dev_mode)

    def root_key_passphrase(self) -> bytes:
        """The root key's own passphrase (ceremony commands only): CA_ROOT_KEY_PASSPHRASE[_FILE];
        only `ca-service dev` falls back to CA_KEY_PASSPHRASE."""
        if not (self.root_passphrase_value or self.root_passphrase_file) and self.dev_mode:
            return self.key_passphrase()
        if not (self.root_passphrase_value or self.root_passphrase_file):
            raise SettingsError(
                "CA_ROOT_KEY_PASSPHRASE or CA_ROOT_KEY_PASSPHRASE_FILE must be set to use the root key (a ceremony command)"
            )
        value = _passphrase(
            "CA_ROOT_KEY_PASSPHRASE", self.root_passphrase_value, self.root_passphrase_file, "the root key passphrase"
        )
        if (self.passphrase_value or self.passphrase_file) and value == self.key_passphrase():
            raise SettingsError("the root key passphrase must differ from CA_KEY_PASSPHRASE (the online keys' passphrase)")
        return value


def _passphrase(name: str, value: str | None, path: Path | None, what: str) -> bytes:
    if value:
        text = value
    elif path is not None:
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={path}: {exc.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SettingsError(f"{name}_FILE={path} is readable by group or others (chmod 600)")
    else:
        raise SettingsError(f"{name} or {name}_FILE must be set to use the CA keys")
    if len(text) < 12:
        raise SettingsError(f"{what} must be at least 12 characters")
    return text.encode("utf-8")


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = [v.strip() for v in (env.get(name) or "").split(",") if v.strip()]
    for value in raw:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SettingsError(f"{name}: {value!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(raw)


def _health_bind(env: Mapping[str, str]) -> str | None:
    value = (env.get("CA_HEALTH_BIND") or "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"CA_HEALTH_BIND: {value!r} is not HOST:PORT (e.g. 0.0.0.0:8081)")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("CA_DATA_DIR") or "./var").resolve()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'ca.sqlite3'}"
    if not database_url.startswith(("sqlite", "postgresql")):
        raise SettingsError(f"DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL, not {database_url.split(':')[0]!r}")
    if database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    redis_url = env.get("REDIS_URL") or None
    if redis_url is not None and urlparse(redis_url).scheme not in {"redis", "rediss", "unix"}:
        raise SettingsError(f"REDIS_URL must be a redis://, rediss:// or unix:// URL, not {redis_url!r}")
    base = (env.get("CA_PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if urlparse(base).scheme not in {"http", "https"} or not urlparse(base).netloc:
        raise SettingsError(f"CA_PUBLIC_BASE_URL={base!r} must be an absolute http(s) URL")
    timezone = env.get("CA_TIMEZONE") or "Asia/Tokyo"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"CA_TIMEZONE={timezone!r} is not a known time zone") from None
    passphrase_file = env.get("CA_KEY_PASSPHRASE_FILE")
    root_passphrase_file = env.get("CA_ROOT_KEY_PASSPHRASE_FILE")
    key_backend = _choice(env, "CA_KEY_BACKEND", "file", ("file", "pkcs11"))
    pin_file = env.get("CA_PKCS11_PIN_FILE")
    if key_backend == "pkcs11":
        missing = [n for n in ("CA_PKCS11_MODULE", "CA_PKCS11_TOKEN_LABEL", "CA_PKCS11_PIN_FILE") if not env.get(n)]
        if missing:
            raise SettingsError(f"CA_KEY_BACKEND=pkcs11 needs {', '.join(missing)}")
    clock_file = env.get("CA_CLOCK_OFFSET_FILE")
    console_secret_file = env.get("CA_CONSOLE_SECRET_KEY_FILE")
    log_level = (env.get("CA_LOG_LEVEL") or "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise SettingsError(f"CA_LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        public_base_url=base,
        organization_name=env.get("CA_ORGANIZATION_NAME") or "Example Bank",
        cert_validity_months=_int(env, "CA_CERT_VALIDITY_MONTHS", 12, 1, 27),
        notice_days=_int(env, "CA_NOTICE_DAYS", 40, 1, 365),
        renewal_window_days=_int(env, "CA_RENEWAL_WINDOW_DAYS", 40, 1, 365),
        timezone=timezone,
        backdate_seconds=_int(env, "CA_BACKDATE_SECONDS", 300, 0, 86400),
        key_algorithm=_choice(env, "CA_KEY_ALGORITHM", "ec", ("ec", "rsa")),
        root_validity_years=_int(env, "CA_ROOT_VALIDITY_YEARS", 20, 1, 50),
        issuing_validity_years=_int(env, "CA_ISSUING_VALIDITY_YEARS", 10, 1, 30),
        crl_validity_hours=_int(env, "CA_CRL_VALIDITY_HOURS", 24, 1, 24 * 31),
        crl_republish_minutes=_int(env, "CA_CRL_REPUBLISH_MINUTES", 60, 1, 24 * 60),
        ocsp_validity_minutes=_int(env, "CA_OCSP_VALIDITY_MINUTES", 60, 1, 7 * 24 * 60),
        ocsp_responder_days=_int(env, "CA_OCSP_RESPONDER_DAYS", 30, 2, 365),
        expiry_scan_cron=env.get("CA_EXPIRY_SCAN_CRON") or "0 9 * * *",
        max_body_bytes=_int(env, "CA_MAX_BODY_BYTES", 65536, 1024, 10 * 1024 * 1024),
        gunicorn_workers=_int(env, "CA_GUNICORN_WORKERS", (os.cpu_count() or 1) * 2 + 1, 1, 64),
        gunicorn_threads=_int(env, "CA_GUNICORN_THREADS", 1, 1, 64),
        gunicorn_timeout=_int(env, "CA_GUNICORN_TIMEOUT", 30, 5, 600),
        log_level=log_level,
        smtp_host=env.get("CA_SMTP_HOST") or "127.0.0.1",
        smtp_port=_int(env, "CA_SMTP_PORT", 25, 1, 65535),
        smtp_starttls=_bool(env, "CA_SMTP_STARTTLS", False),
        smtp_username=env.get("CA_SMTP_USERNAME") or None,
        smtp_password=env.get("CA_SMTP_PASSWORD") or None,
        mail_from=env.get("CA_MAIL_FROM") or "ca-service@localhost",
        mail_retry_intervals=_intervals(env, "CA_MAIL_RETRY_INTERVALS", (30, 120, 600, 1800, 3600)),
        clock_offset_file=Path(clock_file) if clock_file else None,
        passphrase_value=env.get("CA_KEY_PASSPHRASE") or None,
        passphrase_file=Path(passphrase_file) if passphrase_file else None,
        db_statement_timeout_ms=_int(env, "CA_DB_STATEMENT_TIMEOUT_MS", 30_000, 0, 3_600_000),
        db_lock_timeout_ms=_int(env, "CA_DB_LOCK_TIMEOUT_MS", 10_000, 0, 3_600_000),
        frontend_revocations_per_org_hour=_int(env, "CA_FRONTEND_REVOCATIONS_PER_ORG_HOUR", 20, 1, 1_000_000),
        frontend_issuances_per_org_hour=_int(env, "CA_FRONTEND_ISSUANCES_PER_ORG_HOUR", 50, 1, 1_000_000),
        auth_failure_limit=_int(env, "CA_AUTH_FAILURE_LIMIT", 20, 1, 1_000_000),
        auth_failure_window_seconds=_int(env, "CA_AUTH_FAILURE_WINDOW_SECONDS", 300, 1, 86_400),
        token_rotation_grace_hours=_int(env, "CA_TOKEN_ROTATION_GRACE_HOURS", 24, 0, 24 * 90),
        trusted_proxies=_networks(env, "CA_TRUSTED_PROXIES"),
        metrics_allowed=_networks(env, "CA_METRICS_ALLOWED") or ("127.0.0.0/8", "::1"),
        health_bind=_health_bind(env),
        scheduler_lease_seconds=_int(env, "CA_SCHEDULER_LEASE_SECONDS", 30, 3, 300),
        worker_heartbeat_seconds=_int(env, "CA_WORKER_HEARTBEAT_SECONDS", 30, 1, 300),
        crl_overdue_minutes=_int(env, "CA_CRL_OVERDUE_MINUTES", 10, 1, 1440),
        audit_checkpoint_file=Path(env["CA_AUDIT_CHECKPOINT_FILE"]) if env.get("CA_AUDIT_CHECKPOINT_FILE") else None,
        integrity_key_file=Path(env["CA_INTEGRITY_KEY_FILE"]) if env.get("CA_INTEGRITY_KEY_FILE") else None,
        root_passphrase_value=env.get("CA_ROOT_KEY_PASSPHRASE") or None,
        root_passphrase_file=Path(root_passphrase_file) if root_passphrase_file else None,
        dev_mode=_bool(env, "CA_DEV_MODE", False),
        key_backend=key_backend,
        pkcs11_module=env.get("CA_PKCS11_MODULE") or None,
        pkcs11_token_label=env.get("CA_PKCS11_TOKEN_LABEL") or None,
        pkcs11_pin_file=Path(pin_file) if pin_file else None,
        console_secret_value=env.get("CA_CONSOLE_SECRET_KEY") or None,
        console_secret_file=Path(console_secret_file) if console_secret_file else None,
        dual_control=_bool(env, "CA_DUAL_CONTROL", False),
        console_session_minutes=_int(env, "CA_CONSOLE_SESSION_MINUTES", 15, 1, 24 * 60),
        console_lockout_failures=_int(env, "CA_CONSOLE_LOCKOUT_FAILURES", 5, 1, 100),
        console_lockout_minutes=_int(env, "CA_CONSOLE_LOCKOUT_MINUTES", 15, 1, 24 * 60),
        enrolment_code_minutes=_int(env, "CA_ENROLMENT_CODE_MINUTES", 60, 1, 7 * 24 * 60),
        console_login_attempts_per_minute=_int(env, "CA_CONSOLE_LOGIN_ATTEMPTS_PER_MINUTE", 10, 1, 10_000),
        console_secure_cookies=_bool(env, "CA_CONSOLE_SECURE_COOKIES", True),
        webhooks=load_webhook_settings(env, SettingsError, _int, _bool),
    )
