"""Webhook settings (DESIGN §4d): where lifecycle events go and how they are signed.

CA_WEBHOOK_URLS             comma-separated receiver URLs; empty: no event is recorded or sent
CA_WEBHOOK_SECRET[_FILE]    `whsec_<base64>` (decoded at least 24 bytes); two separated by a space
                            while rotating: every delivery then carries both signatures
CA_WEBHOOK_CA_BUNDLE        PEM file of the CAs that verify the receivers' HTTPS (default: system store)
CA_WEBHOOK_ALLOW_HTTP       plain http to a non-loopback host (default false: https only, http to loopback)
CA_WEBHOOK_CONNECT_TIMEOUT_SECONDS / CA_WEBHOOK_TIMEOUT_SECONDS   per attempt (default 3 / 10)
CA_WEBHOOK_RETRY_FIRST_SECONDS / CA_WEBHOOK_RETRY_MAX_SECONDS     backoff: first wait, doubling, capped (5 / 600)
CA_WEBHOOK_GIVE_UP_HOURS    after this long undelivered a delivery is `failed` (default 24)
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

MIN_SECRET_BYTES = 24
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decode_secret(text: str, error: Callable[[str], Exception]) -> bytes:
    if not text.startswith(SECRET_PREFIX):
        raise error(f"a webhook secret must look like {SECRET_PREFIX}<base64>")
    try:
        raw = base64.b64decode(text[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise error("a webhook secret's part after whsec_ must be base64") from None
    if len(raw) < MIN_SECRET_BYTES:
        raise error(f"a webhook secret must decode to at least {MIN_SECRET_BYTES} bytes (it has {len(raw)})")
    return raw


@dataclass(frozen=True)
class WebhookSettings:
    urls: tuple[str, ...] = ()
    secrets: tuple[bytes, ...] = field(default=(), repr=False)
    ca_bundle: Path | None = None
    allow_http: bool = False
    connect_timeout: float = 3.0
    timeout: float = 10.0
    retry_first_seconds: int = 5
    retry_max_seconds: int = 600
    give_up_hours: int = 24

    @property
    def enabled(self) -> bool:
        return bool(self.urls)


def load_webhook_settings(
    env: Mapping[str, str],
    error: Callable[[str], Exception],
    as_int: Callable[[Mapping[str, str], str, int, int, int], int],
    as_bool: Callable[[Mapping[str, str], str, bool], bool],
) -> WebhookSettings:
    urls = tuple(u.strip() for u in (env.get("CA_WEBHOOK_URLS") or "").split(",") if u.strip())
    allow_http = as_bool(env, "CA_WEBHOOK_ALLOW_HTTP", False)
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise error(f"CA_WEBHOOK_URLS: {url!r} is not an absolute http(s) URL")
        if parsed.username or parsed.password:
            raise error("CA_WEBHOOK_URLS: a URL must not carry credentials")
        if parsed.scheme == "http" and not allow_http and not _loopback(parsed.hostname):
            raise error(f"CA_WEBHOOK_URLS: {url!r} is plain http to a non-loopback host (https, or CA_WEBHOOK_ALLOW_HTTP=true)")
    secrets: tuple[bytes, ...] = ()
    if urls:
        text = _secret_text(env, error)
        parts = text.split()
        if not 1 <= len(parts) <= 2:
            raise error("CA_WEBHOOK_SECRET holds one secret, or two separated by a space while rotating")
        secrets = tuple(decode_secret(p, lambda m: error(f"CA_WEBHOOK_SECRET: {m}")) for p in parts)
    bundle = env.get("CA_WEBHOOK_CA_BUNDLE") or None
    if bundle and not Path(bundle).is_file():
        raise error(f"CA_WEBHOOK_CA_BUNDLE={bundle}: no such file")
    connect = as_int(env, "CA_WEBHOOK_CONNECT_TIMEOUT_SECONDS", 3, 1, 60)
    return WebhookSettings(
        urls=urls,
        secrets=secrets,
        ca_bundle=Path(bundle) if bundle else None,
        allow_http=allow_http,
        connect_timeout=float(connect),
        timeout=float(as_int(env, "CA_WEBHOOK_TIMEOUT_SECONDS", 10, connect, 120)),
        retry_first_seconds=as_int(env, "CA_WEBHOOK_RETRY_FIRST_SECONDS", 5, 1, 10),
        retry_max_seconds=as_int(env, "CA_WEBHOOK_RETRY_MAX_SECONDS", 600, 1, 600),
        give_up_hours=as_int(env, "CA_WEBHOOK_GIVE_UP_HOURS", 24, 1, 24 * 7),
    )


def _secret_text(env: Mapping[str, str], error: Callable[[str], Exception]) -> str:
    value = env.get("CA_WEBHOOK_SECRET")
    path = env.get("CA_WEBHOOK_SECRET_FILE")
    if value:
        return value.strip()
    if not path:
        raise error("CA_WEBHOOK_URLS is set: CA_WEBHOOK_SECRET or CA_WEBHOOK_SECRET_FILE must be set too")
    try:
        mode = Path(path).stat().st_mode
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise error(f"CA_WEBHOOK_SECRET_FILE={path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(f"CA_WEBHOOK_SECRET_FILE={path} is readable by group or others (chmod 600)")
    return text
