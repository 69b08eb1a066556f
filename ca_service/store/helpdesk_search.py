"""The help desk's look-ups: one search box (query string -> users, organisations, certificates)
and filtered reads of the audit trail and notices. Every result list is bounded.

Index use (PostgreSQL and SQLite), for tables of ~10M certificates:
- login ID and organisation ID prefixes: a range on the primary key (`>= q AND < q + U+10FFFF`,
  with LIKE as the exact filter), so the PK index is walked, never the table;
- a serial (hex, colons and leading zeros allowed): exact match or prefix range on the UNIQUE
  serial index, or a SHA-256 fingerprint (64 hex digits) exactly on its index (migration 0010);
- users of a matching organisation: through the users.org_id index;
- email and display name prefixes and organisation names have no index: they read the users
  and organisations tables (bounded by LIMIT); an index needs a migration (see docs/operations.md);
- the audit trail is read newest first along its primary key, stopping at `limit` matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ca_service.store.models import AuditEvent, Certificate, Notice, Organization, User

MAX_LIMIT = 1000
_TOP = "\U0010ffff"
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class UserMatch:
    login_id: str
    org_id: str
    org_name: str
    role: str
    email: str | None
    display_name: str | None
    matched_on: str  # login_id | org | email | display_name


@dataclass(frozen=True)
class OrgMatch:
    org_id: str
    name: str
    login_method: str
    matched_on: str  # org_id | name


@dataclass(frozen=True)
class CertMatch:
    serial: str
    login_id: str
    org_id: str
    not_after: datetime
    revoked_at: datetime | None
    matched_on: str  # serial | fingerprint


@dataclass(frozen=True)
class SearchMatches:
    users: list[UserMatch]
    organizations: list[OrgMatch]
    certificates: list[CertMatch]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None], prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`: a range the column's index can serve, plus LIKE for exactness."""
    return and_(column >= prefix, column < prefix + _TOP, column.like(_escape_like(prefix) + "%", escape="\\"))


def serial_prefix(query: str) -> str | None:
    """The query as a serial prefix (lower-case hex, no colons, no leading zeros), or None."""
    value = query.strip().lower().replace(":", "")
    if not value or len(value) > 40 or not set(value) <= _HEX:
        return None
    return value.lstrip("0") or "0"


def _user_rows(session: Session, stmt: Select[tuple[User, Organization]], matched_on: str) -> list[UserMatch]:
    return [
        UserMatch(u.login_id, u.org_id, o.name, u.role, u.email, u.display_name, matched_on) for u, o in session.execute(stmt)
    ]


def search(session: Session, query: str, limit: int = 20) -> SearchMatches:
    """Users (by login ID, organisation ID or name, email, display name prefix), organisations
    (by ID prefix or name substring) and certificates (by serial prefix), each at most `limit`."""
    q = query.strip()
    limit = max(1, min(limit, MAX_LIMIT))
    if not q:
        return SearchMatches([], [], [])
    joined = select(User, Organization).join(Organization, Organization.org_id == User.org_id)
    orgs = list(
        session.scalars(select(Organization).where(_prefix(Organization.org_id, q)).order_by(Organization.org_id).limit(limit))
    )
    org_matches = [OrgMatch(o.org_id, o.name, o.login_method, "org_id") for o in orgs]
    if len(orgs) < limit:
        name_like = "%" + _escape_like(q) + "%"
        by_name = session.scalars(
            select(Organization)
            .where(Organization.name.ilike(name_like, escape="\\"), Organization.org_id.notin_([o.org_id for o in orgs]))
            .order_by(Organization.org_id)
            .limit(limit - len(orgs))
        )
        org_matches += [OrgMatch(o.org_id, o.name, o.login_method, "name") for o in by_name]

    users: dict[str, UserMatch] = {}

    def add(found: list[UserMatch]) -> None:
        for match in found:
            if len(users) < limit:
                users.setdefault(match.login_id, match)

    add(_user_rows(session, joined.where(_prefix(User.login_id, q)).order_by(User.login_id).limit(limit), "login_id"))
    org_ids = [o.org_id for o in org_matches]
    if org_ids and len(users) < limit:
        stmt = joined.where(User.org_id.in_(org_ids)).order_by(User.login_id).limit(limit)
        add(_user_rows(session, stmt, "org"))
    for column, name in ((User.email, "email"), (User.display_name, "display_name")):
        if len(users) < limit:
            add(_user_rows(session, joined.where(_prefix(column, q)).order_by(User.login_id).limit(limit), name))

    certs: list[CertMatch] = []
    serial = serial_prefix(q)
    fingerprint = q.lower().replace(":", "")
    if len(fingerprint) == 64 and set(fingerprint) <= _HEX:  # a SHA-256 fingerprint, exact (indexed since 0010)
        rows = session.execute(
            select(Certificate.serial, Certificate.login_id, Certificate.org_id, Certificate.not_after, Certificate.revoked_at)
            .where(Certificate.fingerprint_sha256 == fingerprint)
            .limit(limit)
        )
        certs = [CertMatch(r.serial, r.login_id, r.org_id, r.not_after, r.revoked_at, "fingerprint") for r in rows]
    elif serial is not None:
        rows = session.execute(
            select(Certificate.serial, Certificate.login_id, Certificate.org_id, Certificate.not_after, Certificate.revoked_at)
            .where(_prefix(Certificate.serial, serial))
            .order_by(Certificate.serial)
            .limit(limit)
        )
        certs = [CertMatch(r.serial, r.login_id, r.org_id, r.not_after, r.revoked_at, "serial") for r in rows]
    return SearchMatches(list(users.values()), org_matches, certs)


@dataclass(frozen=True)
class RevocationRecord:
    revoked_by_client: str | None
    revoked_by_login_id: str | None
    ticket: str | None


def revocation_record(session: Session, serial: str) -> RevocationRecord | None:
    """Who revoked the certificate with this (normalised) serial and on which ticket; None if absent."""
    row = session.execute(
        select(Certificate.revoked_by_client, Certificate.revoked_by_login_id, Certificate.revocation_ticket).where(
            Certificate.serial == serial
        )
    ).first()
    return None if row is None else RevocationRecord(*row)


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None  # API client name (cli:<user> for the CLI) or acting login ID
    action: str | None = None  # exact, or a prefix ending in '.' (e.g. "certificate.")
    target: str | None = None  # target_id, exact (a serial, login ID, organisation ID, ...)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50


def audit_events(session: Session, f: AuditQuery) -> list[AuditEvent]:
    """Matching events, newest first, at most f.limit."""
    conditions: list[ColumnElement[bool]] = []
    if f.actor:
        conditions.append(or_(AuditEvent.client_name == f.actor, AuditEvent.acting_login_id == f.actor))
    if f.action:
        conditions.append(_prefix(AuditEvent.action, f.action) if f.action.endswith(".") else AuditEvent.action == f.action)
    if f.target:
        conditions.append(AuditEvent.target_id == f.target)
    if f.since:
        conditions.append(AuditEvent.occurred_at >= f.since)
    if f.until:
        conditions.append(AuditEvent.occurred_at < f.until)
    stmt = select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(max(1, min(f.limit, MAX_LIMIT)))
    return list(session.scalars(stmt))


def notices(session: Session, *, failed_only: bool, login_id: str | None, limit: int) -> list[Notice]:
    """Notices newest first (only those whose email failed after every retry, if asked)."""
    stmt = select(Notice)
    if failed_only:
        stmt = stmt.where(Notice.email_status == "failed")
    if login_id:
        stmt = stmt.where(Notice.login_id == login_id)
    return list(session.scalars(stmt.order_by(Notice.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))))
