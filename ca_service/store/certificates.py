"""Client certificates: reads by intent, the insert of a new one, its revocation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from ca_service.store import audit_log
from ca_service.store.models import AuditEvent, Certificate, CertificateAuthority
from ca_service.store.validity import STATUSES, status_is, valid_at

_CERTS = Certificate.__table__
_INSERT_COLUMNS = [c.key for c in _CERTS.columns if c.key != "id"]
_INSERT_CERTIFICATE = insert(Certificate)  # compiled once: the hot path skips the ORM unit of work
_EVENTS = AuditEvent.__table__
# PostgreSQL: the certificate and its audit event in one statement (one round trip, not two); the
# same constraints refuse it, by the same names (store.errors).
_INSERT_WITH_EVENT = (
    insert(AuditEvent)
    .values({c.key: bindparam(f"e_{c.key}", type_=c.type) for c in _EVENTS.columns if c.key in audit_log.EVENT_COLUMNS})
    .add_cte(
        insert(Certificate)
        .values({key: bindparam(f"c_{key}", type_=_CERTS.c[key].type) for key in _INSERT_COLUMNS})
        .cte("new_certificate")
    )
)
_RELEASE_CURRENT = update(Certificate).where(Certificate.id == bindparam("cert_id")).values(current_login_id=None)


def by_serial(session: Session, serial: str, *, for_update: bool = False) -> Certificate | None:
    """`serial`: lowercase hex without leading zeros (as stored)."""
    stmt = select(Certificate).where(Certificate.serial == serial)
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def current_certificate(session: Session, login_id: str) -> Certificate | None:
    """The login ID's current certificate (at most one: UNIQUE current_login_id), valid or not:
    an expired one stays current until the next issuance releases it."""
    return session.scalars(select(Certificate).where(Certificate.current_login_id == login_id)).first()


def current_serial(session: Session, login_id: str) -> str | None:
    return session.scalar(select(Certificate.serial).where(Certificate.current_login_id == login_id))


def valid_certificates_of_org(session: Session, org_id: str, now: datetime, *, for_update: bool = False) -> Sequence[Certificate]:
    stmt = select(Certificate).where(Certificate.org_id == org_id, valid_at(now)).order_by(Certificate.id)
    return session.scalars(stmt.with_for_update() if for_update else stmt).all()


def release_current(session: Session, cert_id: int) -> None:
    """The certificate no longer blocks a new issuance for its login ID (it expired, R8)."""
    session.connection().execute(_RELEASE_CURRENT, {"cert_id": cert_id})


def release_before_renewal(session: Session, cert: Certificate) -> None:
    """Free the login ID's UNIQUE current slot now, before the successor is inserted."""
    cert.current_login_id = None
    session.flush()


def mark_superseded(session: Session, cert: Certificate, successor_serial: str) -> None:
    cert.superseded_by = successor_serial
    session.flush()


@dataclass(frozen=True)
class NewCertificate:
    """A signed certificate as issuance hands it to the store: it becomes its login ID's current one."""

    serial: str
    issuer_id: int
    login_id: str
    org_id: str
    spki_sha256: str
    fingerprint_sha256: str
    key_description: str
    issued_at: datetime
    not_before: datetime
    not_after: datetime
    der: bytes
    renewal_of: str | None


def insert_certificate(session: Session, new: NewCertificate, event: Mapping[str, Any] | None = None) -> Certificate:
    """INSERT the certificate as a Core statement, and `event` (audit_log.EVENT_COLUMNS) with it.
    Returns the row, transient (not in the session: it only feeds the caller's view). KeyReused,
    ActiveCertificateExists or SerialCollision (store.errors) when the transaction ends, by the
    constraint that refused it."""
    row = Certificate(current_login_id=new.login_id, **{f.name: getattr(new, f.name) for f in fields(new)})
    values = {key: getattr(row, key) for key in _INSERT_COLUMNS}
    conn = session.connection()
    if event is None:
        conn.execute(_INSERT_CERTIFICATE, values)
    elif conn.dialect.name == "postgresql":
        params = {f"c_{key}": value for key, value in values.items()}
        params.update({f"e_{key}": event.get(key) for key in audit_log.EVENT_COLUMNS})
        conn.execute(_INSERT_WITH_EVENT, params)
    else:  # SQLite has no INSERT in a WITH clause
        conn.execute(_INSERT_CERTIFICATE, values)
        audit_log.insert_event(session, dict(event))
    return row


def revoke(
    session: Session,
    cert: Certificate,
    *,
    reason: str,
    ticket: str | None,
    client_name: str | None,
    acting_login_id: str | None,
    now: datetime,
    role: str | None = None,
) -> None:
    """Mark `cert` revoked (the caller holds its owner's and its own row lock) and free its login
    ID. Counts the revocation on the issuing CA's row, under that row's lock until commit: a CRL
    publication (which takes the same lock) never misses a revocation it has counted."""
    cert.revoked_at, cert.revocation_reason, cert.revocation_ticket = now, reason, ticket
    cert.revoked_by_client, cert.revoked_by_login_id = client_name, acting_login_id
    cert.revoked_by_role = role  # the front-end revocation brake counts role "frontend"
    cert.current_login_id = None
    session.execute(
        update(CertificateAuthority)
        .where(CertificateAuthority.id == cert.issuer_id)
        .values(revocation_count=CertificateAuthority.revocation_count + 1)
    )


@dataclass(frozen=True)
class PageQuery:
    login_id: str | None
    org_id: str | None
    status: str | None
    expiring_before: datetime | None
    after_id: int | None
    limit: int


def page(session: Session, q: PageQuery, now: datetime) -> Sequence[Certificate]:
    """Up to q.limit + 1 certificates in id order after q.after_id, filtered (status at `now`)."""
    stmt = select(Certificate)
    if q.login_id:
        stmt = stmt.where(Certificate.login_id == q.login_id)
    if q.org_id:
        stmt = stmt.where(Certificate.org_id == q.org_id)
    if q.status in STATUSES:
        stmt = stmt.where(status_is(q.status or "", now))
    if q.expiring_before is not None:
        stmt = stmt.where(Certificate.not_after < q.expiring_before)
    if q.after_id is not None:
        stmt = stmt.where(Certificate.id > q.after_id)
    return session.scalars(stmt.order_by(Certificate.id).limit(q.limit + 1)).all()


def by_fingerprint(session: Session, fingerprint_sha256: str) -> Certificate | None:
    """The certificate whose DER hashes to `fingerprint_sha256` (EST re-enrolment: the certificate nginx verified)."""
    return session.scalars(select(Certificate).where(Certificate.fingerprint_sha256 == fingerprint_sha256).limit(1)).first()
