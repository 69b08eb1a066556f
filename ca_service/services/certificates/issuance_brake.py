"""The per-organisation issuance brake, the twin of revocation_brake.py.

A stolen front-end token issues and renews certificates with its own keys for any registered
user; R9 and the key proof keep masters out of its reach, but general users' certificates could
still be replaced wholesale (25 renewals in one organisation went through unbraked). More than
`CA_FRONTEND_ISSUANCES_PER_ORG_HOUR` (default 50) certificates issued or renewed in one
organisation within a sliding hour are refused with 429 issuance-limit-reached (Retry-After: when
the oldest leaves the window). Every issuance path counts (REST, EST); an issuance authorised by
an operator's enrolment code (the help desk's paper procedure) counts but is never refused.

The count is taken in the database, under the organisation-row lock the revocation brake takes,
inside the issuance's own transaction: it holds across gunicorn workers and API replicas and does
not depend on Redis. Every refusal is audited (`certificate.issuance_refused`, its own
transaction), counted in `ca_issuance_limit_refusals_total` and alerted (CaIssuanceBrakeEngaged).
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

log = logging.getLogger("ca_service.issuance")


class IssuanceLimitReached(TooManyRequests):
    code, title = "issuance-limit-reached", "Issuance limit reached"

    def __init__(self, detail: str, *, org_id: str, login_id: str, kind: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.org_id, self.login_id, self.kind, self.retry_after = org_id, login_id, kind, retry_after


def braked(actor: Actor, operator_authorised: bool) -> bool:
    """Operators (and an operator's enrolment code) are never refused."""
    return actor.role != "operator" and not operator_authorised


def check(session: Tx, ctx: ServiceContext, org_id: str, login_id: str, kind: str, now: datetime) -> None:
    """In the issuance's transaction, after the user's lock and before anything is written: lock
    the organisation row (the organisation's braked issuances take turns, so each counts all
    those committed before it), then raise IssuanceLimitReached if the hour's allowance is used."""
    rows.lock_organization_for_revocation(session, org_id)
    limit = ctx.settings.frontend_issuances_per_org_hour
    count, oldest = rows.certificates_issued_since(session, org_id, window_start(now), up_to=limit)
    retry_after = seconds_until_allowed(count, limit, oldest, now)
    if retry_after is None:
        return
    raise IssuanceLimitReached(
        f"{count} or more certificates of organisation {org_id} were issued or renewed in the last hour (limit {limit}); "
        "more are refused until the oldest leaves the hour, or the help desk authorises one on the paper procedure",
        org_id=org_id,
        login_id=login_id,
        kind=kind,
        retry_after=retry_after,
    )


def record_refusal(ctx: ServiceContext, actor: Actor, refused: IssuanceLimitReached) -> None:
    """After the refused transaction rolled back: audit it, count it, log it."""
    with change(ctx, actor) as uow:
        uow.audit(
            "certificate.issuance_refused",
            target_type="user",
            target_id=refused.login_id,
            org_id=refused.org_id,
            kind=refused.kind,
            reason="issuance-limit-reached",
            limit=ctx.settings.frontend_issuances_per_org_hour,
            retry_after=refused.retry_after,
        )
    metrics.ISSUANCE_LIMIT_REFUSALS.labels(refused.kind).inc()
    log.warning(
        "%s refused: organisation %s is over %d certificates per hour (client %s)",
        refused.kind, refused.org_id, ctx.settings.frontend_issuances_per_org_hour, actor.client_name,
    )  # fmt: skip
