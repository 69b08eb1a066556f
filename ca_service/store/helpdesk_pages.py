"""Reads behind the console's organisation and user pages (bounded, along existing indexes:
users.org_id, certificates.login_id, audit_events primary key)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ca_service.store.models import AuditEvent, Certificate, CertificateAuthority, User

MAX_ROWS = 500


def users_of_org(session: Session, org_id: str, limit: int = MAX_ROWS) -> list[User]:
    return list(session.scalars(select(User).where(User.org_id == org_id).order_by(User.login_id).limit(limit)))


def certificates_of_login(session: Session, login_id: str, limit: int = MAX_ROWS) -> list[Certificate]:
    """Every certificate the login ID was issued, newest first."""
    stmt = select(Certificate).where(Certificate.login_id == login_id).order_by(Certificate.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def current_certificates(session: Session, login_ids: list[str]) -> list[Certificate]:
    if not login_ids:
        return []
    return list(session.scalars(select(Certificate).where(Certificate.current_login_id.in_(login_ids))))


def events_about(
    session: Session, targets: list[str], actions: tuple[str, ...] | None = None, limit: int = 200
) -> list[AuditEvent]:
    """Audit events whose target is one of `targets` (a login ID, its serials, an org ID), newest first."""
    if not targets:
        return []
    stmt = select(AuditEvent).where(AuditEvent.target_id.in_(targets))
    if actions:
        stmt = stmt.where(or_(*(AuditEvent.action == a for a in actions)))
    return list(session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit)))


def ocsp_responders(session: Session) -> list[CertificateAuthority]:
    stmt = select(CertificateAuthority).where(CertificateAuthority.kind == "ocsp", CertificateAuthority.active.is_(True))
    return list(session.scalars(stmt.order_by(CertificateAuthority.not_after.desc())))
