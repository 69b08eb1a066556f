"""One-time enrolment codes: reads and updates by intent. Only hashes are stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate, EnrolmentCode, User


def add(
    session: Session,
    *,
    login_id: str,
    code_hash: str,
    minted_by: str,
    minted_role: str,
    ticket: str | None,
    minted_at: datetime,
    expires_at: datetime,
) -> EnrolmentCode:
    """The new code, with no wrong attempt yet; flushed (the caller reads its id)."""
    row = EnrolmentCode(
        login_id=login_id, code_hash=code_hash, minted_by=minted_by, minted_role=minted_role, ticket=ticket,
        minted_at=minted_at, expires_at=expires_at, attempts=0,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _open(now: datetime) -> tuple[object, ...]:
    return (EnrolmentCode.used_at.is_(None), EnrolmentCode.voided_at.is_(None), EnrolmentCode.expires_at > now)


def outstanding(session: Session, login_id: str, now: datetime, *, for_update: bool = False) -> EnrolmentCode | None:
    """The login ID's newest code that is neither used, voided nor expired (a new code voids the
    older ones, so there is at most one)."""
    stmt = (
        select(EnrolmentCode)
        .where(EnrolmentCode.login_id == login_id, *_open(now))  # type: ignore[arg-type]
        .order_by(EnrolmentCode.id.desc())
        .limit(1)
    )
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def by_id(session: Session, code_id: int, *, for_update: bool = False) -> EnrolmentCode | None:
    return session.get(EnrolmentCode, code_id, with_for_update=for_update)


def void_outstanding(session: Session, login_id: str, now: datetime, reason: str) -> int:
    """Void every open code of the login ID; how many were open."""
    stmt = (
        update(EnrolmentCode)
        .where(EnrolmentCode.login_id == login_id, *_open(now))  # type: ignore[arg-type]
        .values(voided_at=now, void_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(stmt).rowcount or 0)  # type: ignore[attr-defined]


def logins_with_open_codes_of_org(session: Session, org_id: str, now: datetime) -> list[str]:
    stmt = (
        select(EnrolmentCode.login_id)
        .join(User, User.login_id == EnrolmentCode.login_id)
        .where(User.org_id == org_id, *_open(now))  # type: ignore[arg-type]
        .distinct()
        .order_by(EnrolmentCode.login_id)
    )
    return list(session.scalars(stmt))


def of_user(session: Session, login_id: str, *, limit: int = 20) -> Sequence[EnrolmentCode]:
    """The login ID's codes, newest first (the console's user page)."""
    stmt = select(EnrolmentCode).where(EnrolmentCode.login_id == login_id).order_by(EnrolmentCode.id.desc()).limit(limit)
    return session.scalars(stmt).all()


def ever_revoked_except_superseded(session: Session, login_id: str) -> bool:
    """Whether a certificate of the login ID was ever revoked other than by its own renewal."""
    stmt = select(
        exists().where(
            Certificate.login_id == login_id,
            Certificate.revoked_at.is_not(None),
            Certificate.revocation_reason != "superseded",
        )
    )
    return bool(session.scalar(stmt))
