"""The front-end revocation brake (DESIGN §4).

A stolen front-end token can name any master user as `acting_login_id`, so the bank's rule R10
alone would let it revoke every general user's certificate of every organisation in a minute.
More than `CA_FRONTEND_REVOCATIONS_PER_ORG_HOUR` front-end revocations in one organisation within
a sliding hour are refused with 429 revocation-limit-reached (Retry-After: when the oldest one
leaves the window). Operators are never limited.

The count is taken in the database, under a lock on the organisation row, inside the
revocation's own transaction: it holds across gunicorn workers and API replicas and does not
depend on Redis. Every refusal is audited (its own transaction) and counted in
`ca_revocation_limit_refusals_total`, which the CaRevocationBrakeEngaged alert watches.
"""

from __future__ import annotations

import logging
from datetime import datetime

from ca_service import metrics
from ca_service.context import Actor, ServiceContext
from ca_service.errors import TooManyRequests
from ca_service.services.audit.change import change
from ca_service.services.certificates.hourly_allowance import seconds_until_allowed, window_start
from ca_service.store import revocations as rows
from ca_service.store.db import Tx

log = logging.getLogger("ca_service.revocation")


class RevocationLimitReached(TooManyRequests):
    code, title = "revocation-limit-reached", "Revocation limit reached"

    def __init__(self, detail: str, *, org_id: str, serial: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.org_id, self.serial, self.retry_after = org_id, serial, retry_after


def lock(session: Tx, actor: Actor, org_id: str) -> None:
    """First in the revocation's transaction after the owner's row (before the certificate's: a
    login-method switch locks the organisation, then its certificates): front-end revocations of
    one organisation take turns, so each one counts all those committed before it."""
    if actor.role == "frontend":
        rows.lock_organization_for_revocation(session, org_id)


def check(session: Tx, ctx: ServiceContext, actor: Actor, org_id: str, serial: str, now: datetime) -> None:
    """In the revocation's transaction, under lock(), before anything is written: raise
    RevocationLimitReached if the front end has used up the organisation's hourly allowance."""
    if actor.role != "frontend":
        return
    limit = ctx.settings.frontend_revocations_per_org_hour
    count, oldest = rows.frontend_revocations_since(session, org_id, window_start(now))
    retry_after = seconds_until_allowed(count, limit, oldest, now)
    if retry_after is None:
        return
    raise RevocationLimitReached(
        f"the front end has revoked {count} certificates of organisation {org_id} in the last hour (limit {limit}); "
        "more revocations are refused until the oldest leaves the hour, or the help desk revokes on the paper procedure",
        org_id=org_id,
        serial=serial,
        retry_after=retry_after,
    )


def record_refusal(ctx: ServiceContext, actor: Actor, refused: RevocationLimitReached) -> None:
    """After the refused transaction rolled back: audit it, count it, log it."""
    with change(ctx, actor) as uow:
        uow.audit(
            "certificate.revocation_refused",
            target_type="certificate",
            target_id=refused.serial,
            org_id=refused.org_id,
            reason="revocation-limit-reached",
            limit=ctx.settings.frontend_revocations_per_org_hour,
            retry_after=refused.retry_after,
        )
    metrics.REVOCATION_LIMIT_REFUSALS.inc()
    log.warning(
        "front-end revocation refused: organisation %s is over %d revocations per hour (client %s)",
        refused.org_id, ctx.settings.frontend_revocations_per_org_hour, actor.client_name,
    )  # fmt: skip
