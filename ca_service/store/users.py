"""Organisations and users, and the lock every issuance and renewal takes first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate, Organization, User

_USERS, _ORGS, _CERTS = User.__table__, Organization.__table__, Certificate.__table__


def get_org(session: Session, org_id: str, *, for_update: bool = False) -> Organization | None:
    return session.get(Organization, org_id, with_for_update=for_update)


def get_user(session: Session, login_id: str, *, for_update: bool = False) -> User | None:
    return session.get(User, login_id, with_for_update=for_update)


def add_organization(session: Session, *, org_id: str, name: str, login_method: str, now: datetime) -> Organization:
    org = Organization(org_id=org_id, name=name, login_method=login_method, created_at=now, updated_at=now)
    session.add(org)
    return org


def add_user(
    session: Session, *, login_id: str, org_id: str, role: str, email: str | None, display_name: str | None, now: datetime
) -> User:
    """The new user, written at once: a concurrent first registration of the login ID fails here
    (LoginIdTaken, store.errors), not at commit."""
    user = User(
        login_id=login_id, org_id=org_id, role=role, email=email, display_name=display_name, created_at=now, updated_at=now
    )
    session.add(user)
    session.flush()
    return user


def flush(session: Session) -> None:
    """Write the pending changes now (the transaction goes on)."""
    session.flush()


@dataclass(frozen=True, slots=True)
class CurrentCertificate:
    id: int
    serial: str
    not_after: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class IssuanceSubject:
    """The locked user, its organisation's login method, and its current certificate if any."""

    login_id: str
    org_id: str
    login_method: str
    current: CurrentCertificate | None
    role: str


# The first statement of an issuance or renewal, compiled once: lock the user row (FOR UPDATE),
# key-share the organisation row and read the login ID's current certificate, in one round trip.
# A concurrent issuance that committed while this one waited for the lock is not in this
# statement's snapshot; the UNIQUE current_login_id then refuses the second insert
# (ActiveCertificateExists; tests/e2e/test_issuance_race.py).
_LOCK_FOR_ISSUANCE = (
    select(
        _USERS.c.login_id,
        _USERS.c.org_id,
        _USERS.c.role,
        _ORGS.c.login_method,
        _CERTS.c.id.label("current_id"),
        _CERTS.c.serial.label("current_serial"),
        _CERTS.c.not_after.label("current_not_after"),
        _CERTS.c.revoked_at.label("current_revoked_at"),
    )
    .select_from(
        _USERS.join(_ORGS, _ORGS.c.org_id == _USERS.c.org_id).outerjoin(_CERTS, _CERTS.c.current_login_id == _USERS.c.login_id)
    )
    .where(_USERS.c.login_id == bindparam("login_id"))
    .with_for_update(of=_USERS)
    .suffix_with("FOR KEY SHARE OF organizations", dialect="postgresql")
)


def lock_user_for_issuance(session: Session, login_id: str) -> IssuanceSubject | None:
    """The user row locked, the organisation key-shared (a login-method switch, FOR UPDATE on it,
    waits for this transaction and this one for a switch in flight), the current certificate
    read. None if the login ID is not registered. (SQLite: BEGIN IMMEDIATE already serialises.)"""
    row = session.connection().execute(_LOCK_FOR_ISSUANCE, {"login_id": login_id}).first()
    if row is None:
        return None
    current = None
    if row.current_id is not None:
        current = CurrentCertificate(row.current_id, row.current_serial, row.current_not_after, row.current_revoked_at)
    return IssuanceSubject(row.login_id, row.org_id, row.login_method, current, row.role)


def spelling_ignoring_case(session: Session, login_id: str) -> str | None:
    """The registered spelling of `login_id` if one differs from it only in case (DESIGN §4:
    login IDs are unique ignoring case, enforced by the unique index on lower(login_id))."""
    return session.scalars(select(User.login_id).where(func.lower(User.login_id) == login_id.lower()).limit(1)).first()
