"""Reading certificates: status against the clock, views, filtered cursor pagination."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service.context import ServiceContext
from ca_service.errors import InvalidInput, NotFound
from ca_service.store import certificates as store
from ca_service.store.db import Tx, reading
from ca_service.store.models import Certificate
from ca_service.store.validity import STATUSES, status_of

__all__ = ["STATUSES", "CertificateView", "days_remaining", "find_by_serial", "status_of", "view_of"]


def days_remaining(not_after: datetime, now: datetime, tz: ZoneInfo) -> int:
    """Calendar days until expiry as the user sees dates (in CA_TIMEZONE); 0 on the last day."""
    return max(0, (not_after.astimezone(tz).date() - now.astimezone(tz).date()).days)


def normalise_serial(serial: str) -> str:
    value = serial.strip().lower().replace(":", "")
    if not value or len(value) > 40 or any(c not in "0123456789abcdef" for c in value):
        raise NotFound(f"no certificate with serial {serial[:64]!r}", code="certificate-not-found")
    return value.lstrip("0") or "0"


@dataclass(frozen=True)
class CertificateView:
    serial: str
    login_id: str
    org_id: str
    status: str
    issued_at: datetime
    not_before: datetime
    not_after: datetime
    days_remaining: int | None  # only for an active certificate: a revoked or expired one has none
    fingerprint_sha256: str
    key_description: str
    certificate_pem: str
    renewal_of: str | None
    superseded_by: str | None
    revoked_at: datetime | None
    revocation_reason: str | None


def view_of(row: Certificate, ctx: ServiceContext, now: datetime | None = None) -> CertificateView:
    now = now or ctx.clock.now()
    status = status_of(row, now)
    pem = x509.load_der_x509_certificate(row.der).public_bytes(serialization.Encoding.PEM).decode()
    return CertificateView(
        serial=row.serial,
        login_id=row.login_id,
        org_id=row.org_id,
        status=status,
        issued_at=row.issued_at,
        not_before=row.not_before,
        not_after=row.not_after,
        days_remaining=days_remaining(row.not_after, now, ctx.settings.tz) if status == "active" else None,
        fingerprint_sha256=row.fingerprint_sha256,
        key_description=row.key_description,
        certificate_pem=pem,
        renewal_of=row.renewal_of,
        superseded_by=row.superseded_by,
        revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason,
    )


def find_by_serial(session: Tx, serial: str, *, for_update: bool = False) -> Certificate:
    row = store.by_serial(session, normalise_serial(serial), for_update=for_update)
    if row is None:
        raise NotFound(f"no certificate with serial {serial[:64]}", code="certificate-not-found")
    return row


def get_certificate(ctx: ServiceContext, serial: str) -> CertificateView:
    with reading(ctx.sessions) as session:
        return view_of(find_by_serial(session, serial), ctx)


def _encode_cursor(last_id: int) -> str:
    """Opaque to clients: `c1` and the last row's id in hex (the API documents the pattern)."""
    return f"c1{last_id:x}"


def _decode_cursor(cursor: str) -> int:
    if not (cursor.startswith("c1") and 3 <= len(cursor) <= 17 and all(c in "0123456789abcdef" for c in cursor[2:])):
        raise InvalidInput("cursor is not a cursor this API returned", fields={"cursor": "invalid cursor"})
    return int(cursor[2:], 16)


@dataclass(frozen=True)
class CertificateFilter:
    login_id: str | None = None
    org_id: str | None = None
    status: str | None = None
    expiring_before: datetime | None = None
    limit: int = 100
    cursor: str | None = None


def list_certificates(ctx: ServiceContext, f: CertificateFilter) -> tuple[list[CertificateView], str | None]:
    now = ctx.clock.now()
    after_id = _decode_cursor(f.cursor) if f.cursor else None
    query = store.PageQuery(f.login_id, f.org_id, f.status, f.expiring_before, after_id, f.limit)
    with reading(ctx.sessions) as session:
        rows = store.page(session, query, now)
    page = rows[: f.limit]
    next_cursor = _encode_cursor(page[-1].id) if len(rows) > f.limit else None
    return [view_of(r, ctx, now) for r in page], next_cursor
