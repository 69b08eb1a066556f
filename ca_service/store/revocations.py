"""Queries for the front-end revocation brake (services/revocation_brake.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate, Organization


def lock_organization_for_revocation(session: Session, org_id: str) -> None:
    """Serialise the organisation's front-end revocations until commit, so that concurrent ones
    (any gunicorn worker, any API replica) count each other. FOR NO KEY UPDATE: it does not wait
    for issuance (which takes KEY SHARE), only for other revocations and a login-method switch."""
    session.execute(select(Organization.org_id).where(Organization.org_id == org_id).with_for_update(key_share=True))


def frontend_revocations_since(session: Session, org_id: str, since: datetime) -> tuple[int, datetime | None]:
    """How many of the organisation's certificates the front end revoked after `since`, whatever
    the reason, and the earliest of those revocation times. Only a renewal's predecessor (it has a
    successor in `superseded_by`) is left out; a reason alone never is (issue 26, finding 1)."""
    row = session.execute(
        select(func.count(), func.min(Certificate.revoked_at)).where(
            Certificate.org_id == org_id,
            Certificate.revoked_by_role == "frontend",
            Certificate.revoked_at > since,
            Certificate.superseded_by.is_(None),
        )
    ).one()
    return int(row[0]), row[1]
