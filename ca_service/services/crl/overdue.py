"""Is a revocation kept off the CRL? (Whoever can write to Redis can suspend
the workers (`rq:suspended`), delete a queued publication or hold the scheduler lease; none of
that may go unnoticed.)

Computed from the database alone, so it holds whoever holds the lease and whatever Redis says:
the issuing CA's revocation counter against the one its latest CRL covers (revocation and
publication count under the CA row's lock, services/crl/publication), and the earliest revocation
time after that CRL's thisUpdate. A revocation takes its time just before it waits for that lock,
so one that waited while a publication held it can be dated a little before the CRL's thisUpdate
without being on it: the search starts LOCK_WAIT_SLACK earlier (which can only make the age look
older, never hide one). The metrics (ca_crl_unpublished_revocation_seconds,
ca_crl_revocation_overdue: alert CaRevocationNotOnCrl) and /readyz report it.
"""

from __future__ import annotations

from datetime import timedelta

from ca_service.constants import CaKind
from ca_service.context import ServiceContext
from ca_service.services.authority.hierarchy import active_ca
from ca_service.store import crls
from ca_service.store.db import reading

LOCK_WAIT_SLACK = timedelta(seconds=60)


def oldest_unpublished_seconds(ctx: ServiceContext) -> float | None:
    """How long the oldest revocation not on the issuing CA's latest CRL has waited; None if every
    revocation is on it (or there is no issuing CA)."""
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:
        ca = active_ca(session, CaKind.ISSUING)
        if ca is None:
            return None
        latest = crls.latest(session, ca.id)
        if latest is not None and latest.revocation_count == ca.revocation_count:
            return None
        if latest is None:  # no CRL yet (`init` publishes one): every revocation counts
            oldest = crls.oldest_revocation_after(session, ca.id, ca.not_before - LOCK_WAIT_SLACK)
        else:
            oldest = crls.oldest_revocation_after(session, ca.id, latest.this_update - LOCK_WAIT_SLACK)
            if oldest is None:  # counted but not found (the clock moved back): as old as the CRL
                oldest = latest.this_update
    if oldest is None:
        return None
    return max(0.0, (now - oldest).total_seconds())


def overdue(ctx: ServiceContext, seconds: float | None) -> bool:
    return seconds is not None and seconds > ctx.settings.crl_overdue_minutes * 60


def status(ctx: ServiceContext) -> str:
    """For /readyz: "ok", or what is wrong (reported; the service keeps serving)."""
    seconds = oldest_unpublished_seconds(ctx)
    if not overdue(ctx, seconds):
        return "ok"
    assert seconds is not None
    return (
        f"a revocation has not been on the CRL for {int(seconds // 60)} min: check the workers and the scheduler "
        "(`rq resume` if suspended, `ca-service jobs failed`, then `ca-service crl publish`)"
    )
