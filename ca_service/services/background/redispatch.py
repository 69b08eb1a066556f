"""Work that Redis lost, put back (DESIGN §2: losing Redis loses nothing).

The outbox sweep enqueues entries that never reached Redis. This goes one step further, for a
Redis that restarted without persistence (or evicted keys) after it had accepted jobs: it looks
at what the database says is still to do, and enqueues it again when no job for it is in Redis.

- A revocation not yet on the issuing CA's CRL, with no publication job waiting or running:
  enqueue a publication (it publishes everything committed, so one covers them all).
- A notice whose email is still `pending` (not sent, not given up on) whose job is not in Redis
  (queued, running, waiting for a retry or recently finished), or is `queued` in no queue (a
  worker stopped between taking it off the queue and starting it): enqueue its email job again. The
  job sends under the notice's row lock and records `sent` in the same transaction, so a second
  job for the same notice sends nothing.

Both are enqueued through the relay (the one road to RQ, with its retry policy and coalescing).
Both look only at work older than GRACE_SECONDS, so work committed a moment ago, whose job the
relay is enqueueing right now, is left to the relay.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError

from ca_service.context import ServiceContext
from ca_service.outbox import records, recovery, relay
from ca_service.services.crl import publication as crl_publication
from ca_service.store.db import reading
from ca_service.store.undone_work import notices_awaiting_email

log = logging.getLogger("ca_service.outbox")
GRACE_SECONDS = 10.0
BATCH = 1000


def redispatch_lost(ctx: ServiceContext) -> int:
    """Enqueue again what Redis lost; returns how many jobs were enqueued."""
    if ctx.settings.redis_url is None:
        return 0
    enqueued = 0
    try:
        conn = ctx.redis()
        since = crl_publication.seconds_since_pending_publication(ctx)
        if (
            since is not None
            and since > GRACE_SECONDS
            and not recovery.crl_publication_in_hand(conn, worker_heartbeat_seconds=ctx.settings.worker_heartbeat_seconds)
        ):
            relay.enqueue_publication(ctx)
            log.warning("outbox: a revocation was not on the CRL and no publication was queued; enqueued one")
            enqueued += 1
        with reading(ctx.sessions) as session:
            due = notices_awaiting_email(session, created_before=ctx.clock.now() - timedelta(seconds=GRACE_SECONDS), limit=BATCH)
        lost = recovery.lost_email_jobs(conn, due)
        for notice_id in lost:
            relay.enqueue(ctx, records.NOTICE_EMAIL, {"notice_id": notice_id})
        if lost:
            log.warning("outbox: %s notice emails had no job in Redis; enqueued them again", len(lost))
        return enqueued + len(lost)
    except RedisError as exc:
        log.warning("outbox: Redis unavailable for the lost-work check (%s)", type(exc).__name__)
        return enqueued
