"""The operators and approvals tables (the console's accounts and dual-control requests)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from ca_service.store.models import Approval, Operator


def add(
    session: Session, *, username: str, display_name: str | None, password_hash: str, totp_secret: str, created_at: datetime
) -> Operator:
    """The new operator, with no failed login and its first session epoch; DuplicateName
    (store.errors) at commit if the username is taken."""
    row = Operator(
        username=username, display_name=display_name, password_hash=password_hash, totp_secret=totp_secret,
        created_at=created_at, failed_logins=0, session_epoch=0,
    )  # fmt: skip
    session.add(row)
    return row


def get(session: Session, username: str, *, for_update: bool = False) -> Operator | None:
    stmt = select(Operator).where(Operator.username == username)
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def all_operators(session: Session) -> list[Operator]:
    return list(session.scalars(select(Operator).order_by(Operator.username)))


def add_approval(
    session: Session,
    *,
    kind: str,
    target_id: str,
    params: str,
    ticket: str,
    requested_by: str,
    requested_at: datetime,
    expires_at: datetime,
) -> Approval:
    """The new request, pending; flushed (the caller reads its id)."""
    row = Approval(
        kind=kind, target_id=target_id, params=params, ticket=ticket, requested_by=requested_by,
        requested_at=requested_at, expires_at=expires_at, status="pending",
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def get_approval(session: Session, approval_id: int, *, for_update: bool = False) -> Approval | None:
    stmt = select(Approval).where(Approval.id == approval_id)
    return session.scalars(stmt.with_for_update() if for_update else stmt).first()


def claim_approval(session: Session, approval_id: int, now: datetime, approver: str) -> bool:
    """pending -> running (decided by `approver` at `now`), if still pending and not expired (one
    approver wins a race)."""
    result = session.execute(
        update(Approval)
        .where(Approval.id == approval_id, Approval.status == "pending", Approval.expires_at > now)
        .values(status="running", decided_by=approver, decided_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _interrupted(running_since: datetime) -> Select[tuple[Approval]]:
    return select(Approval).where(Approval.status == "running", Approval.decided_at < running_since)


def any_interrupted_approval(session: Session, running_since: datetime) -> bool:
    """Is any approval still running that was claimed before `running_since`? (a plain read)"""
    return session.scalars(_interrupted(running_since).limit(1)).first() is not None


def interrupted_approvals(session: Session, running_since: datetime) -> list[Approval]:
    """Approvals still running that were claimed before `running_since`, locked (skipping those
    another sweep holds)."""
    return list(session.scalars(_interrupted(running_since).with_for_update(skip_locked=True)))


def approvals(session: Session, *, statuses: tuple[str, ...] | None = None, limit: int = 100) -> list[Approval]:
    stmt = select(Approval)
    if statuses:
        stmt = stmt.where(Approval.status.in_(statuses))
    return list(session.scalars(stmt.order_by(Approval.id.desc()).limit(limit)))
