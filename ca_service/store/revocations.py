"""Queries for the front-end revocation brake (services/certificates/revocation_brake.py) and the issuance
brake (services/certificates/issuance_brake.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate, Organization

_ORGS = Organization.__table__
_CERTS = Certificate.__table__

# Every braked issuance, renewal and front-end revocation runs these two: built once, executed on
# the Core connection (building an ORM select per call, with its cache key and ORM result
# processing, cost more CPU than PostgreSQL spends on them).
_LOCK_ORGANIZATION = select(_ORGS.c.org_id).where(_ORGS.c.org_id == bindparam("org_id")).with_for_update(key_share=True)
_RECENT_ISSUANCES = (
    select(_CERTS.c.issued_at)
    .where(_CERTS.c.org_id == bindparam("org_id"), _CERTS.c.issued_at > bindparam("since"))
    .order_by(_CERTS.c.issued_at)
    .limit(bindparam("up_to"))
    .subquery()
)
_COUNT_ISSUED_SINCE = select(func.count(), func.min(_RECENT_ISSUANCES.c.issued_at))


def lock_organization_for_revocation(session: Session, org_id: str) -> None:
    """Serialise the organisation's front-end revocations until commit, so that concurrent ones
    (any gunicorn worker, any API replica) count each other. FOR NO KEY UPDATE: it does not wait
    for the KEY SHARE every issuance takes first, only for other revocations, braked issuances and
    renewals (which take this lock too, after it) and a login-method switch."""
    session.connection().execute(_LOCK_ORGANIZATION, {"org_id": org_id})


def frontend_revocations_since(session: Session, org_id: str, since: datetime) -> tuple[int, datetime | None]:
    """How many of the organisation's certificates the front end revoked after `since`, whatever
    the reason, and the earliest of those revocation times. Only a renewal's predecessor (it has a
    successor in `superseded_by`) is left out; a reason alone never is (else a caller naming that
    reason would slip past the brake)."""
    row = session.execute(
        select(func.count(), func.min(Certificate.revoked_at)).where(
            Certificate.org_id == org_id,
            Certificate.revoked_by_role == "frontend",
            Certificate.revoked_at > since,
            Certificate.superseded_by.is_(None),
        )
    ).one()
    return int(row[0]), row[1]


def certificates_issued_since(session: Session, org_id: str, since: datetime, *, up_to: int) -> tuple[int, datetime | None]:
    """How many certificates of the organisation were issued (new or renewal) after `since`,
    counted no further than `up_to` (the brake's limit: the count reads at most that many index
    entries, however many an organisation was allowed by operators), and the earliest of those
    issuance times."""
    row = session.connection().execute(_COUNT_ISSUED_SINCE, {"org_id": org_id, "since": since, "up_to": up_to}).one()
    return int(row[0]), row[1]


def has_help_desk_revocation(session: Session, login_id: str) -> bool:
    """Whether a certificate of the login ID was ever revoked other than by its own renewal
    (superseded): by the help desk, a master, or a login-method switch."""
    return (
        session.scalar(
            select(Certificate.id)
            .where(
                Certificate.login_id == login_id,
                Certificate.revoked_at.is_not(None),
                Certificate.superseded_by.is_(None),
            )
            .limit(1)
        )
        is not None
    )
