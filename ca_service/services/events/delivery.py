"""The worker's side: deliver a stream's events to one URL, oldest first, at least once.

A (stream, URL) is a queue: only its oldest pending delivery is ever attempted (so a
`certificate.revoked` never reaches a receiver before the `certificate.issued` recorded before
it). An attempt leases that delivery for the attempt's deadline plus a margin, in its own short
transaction; the HTTP request runs outside any transaction; its outcome is written only if the
lease is still ours. A worker killed mid-attempt leaves a lease that expires: the sweep then
enqueues the stream again, and the receiver may see that event twice (it dedupes on `id`).

Retries: the n-th failed attempt waits min(first x 2^(n-1), max) seconds (5, 10, 20, ... 600 by
default), through RQ's scheduled jobs; after CA_WEBHOOK_GIVE_UP_HOURS the delivery is `failed`
and the stream's next event goes on (a failed event no longer holds the others back).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from redis.exceptions import RedisError

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.outbox import relay
from ca_service.services.events import sender, signing
from ca_service.services.events.recording import WEBHOOK_DELIVER
from ca_service.store import webhooks as store
from ca_service.store.db import reading, transaction
from config.webhook_settings import WebhookSettings

log = logging.getLogger("ca_service.webhooks")
LEASE_MARGIN_SECONDS = 30
JOB_BUDGET_SECONDS = 5.0  # one job delivers a stream's backlog for this long, then yields the worker
SWEEP_GRACE_SECONDS = 10.0
SWEEP_BATCH = 500


def backoff_seconds(settings: WebhookSettings, attempts: int) -> int:
    """The wait after the `attempts`-th failed attempt: first, doubling, capped."""
    return min(settings.retry_first_seconds * 2 ** max(0, min(attempts - 1, 30)), settings.retry_max_seconds)


def schedule(settings: WebhookSettings) -> list[int]:
    """Every attempt's offset (seconds) from the event while the receiver keeps failing."""
    offsets, at, n = [0], 0, 1
    limit = settings.give_up_hours * 3600
    while at < limit:
        at = min(at + backoff_seconds(settings, n), limit)
        offsets.append(at)
        n += 1
    return offsets


@dataclass(frozen=True)
class Step:
    outcome: str  # delivered, retry, failed, waiting, busy, idle
    wait: float = 0.0


def attempt_next(ctx: ServiceContext, stream: str, url: str) -> Step:
    ws = ctx.settings.webhooks
    with transaction(ctx.sessions) as session:
        head = store.oldest_pending(session, stream, url)
        if head is None:
            return Step("idle")
        now = ctx.clock.now()
        if head.leased_until is not None and head.leased_until > now:
            return Step("busy")
        if head.next_attempt_at > now:
            return Step("waiting", (head.next_attempt_at - now).total_seconds())
        token = secrets.token_hex(8)
        head.lease_token, head.leased_until = token, now + timedelta(seconds=ws.timeout + LEASE_MARGIN_SECONDS)
        head.attempts += 1
        event = store.event(session, head.event_seq)
        delivery_id, event_id, event_type, body = head.id, event.event_id, event.type, event.body.encode()
    payload_headers = signing.headers(ws.secrets, event_id, int(time.time()), body)
    result = sender.post(
        url, body, payload_headers, connect_timeout=ws.connect_timeout, timeout=ws.timeout, ca_bundle=ws.ca_bundle
    )
    with transaction(ctx.sessions) as session:
        row = store.lock_delivery(session, delivery_id)
        if row is None or row.lease_token != token:
            return Step("busy")  # our lease ran out and another attempt took over
        now = ctx.clock.now()
        row.leased_until, row.lease_token = None, None
        row.last_status, row.last_error = result.status, result.error
        give_up_at = row.created_at + timedelta(hours=ws.give_up_hours)
        if result.ok:
            row.status, row.finished_at, step = store.DELIVERED, now, Step("delivered")
        elif now >= give_up_at:
            row.status, row.finished_at, step = store.FAILED, now, Step("failed")
        else:
            row.next_attempt_at = min(now + timedelta(seconds=backoff_seconds(ws, row.attempts)), give_up_at)
            step = Step("retry", (row.next_attempt_at - now).total_seconds())
        attempts = row.attempts
    metrics.WEBHOOK_DELIVERIES.labels(event_type, step.outcome).inc()
    if not result.ok:
        log.warning("webhook %s (%s) to %s: attempt %s %s: %s", event_id, event_type, url, attempts, step.outcome, result.error)
    return step


def deliver_stream(ctx: ServiceContext, stream: str, url: str) -> dict[str, int | str]:
    """The job: deliver the stream's pending events to `url` in order until none is left, one
    fails (then a retry is scheduled) or the job's budget is spent (then another job goes on)."""
    started = time.monotonic()
    delivered = 0
    while True:
        step = attempt_next(ctx, stream, url)
        if step.outcome in ("delivered", "failed"):
            delivered += step.outcome == "delivered"
            if time.monotonic() - started > JOB_BUDGET_SECONDS:
                kick(ctx, stream, url)
                return {"delivered": delivered, "last": "budget"}
            continue
        if step.outcome in ("retry", "waiting"):
            kick(ctx, stream, url, delay=step.wait)
        return {"delivered": delivered, "last": step.outcome}


def kick(ctx: ServiceContext, stream: str, url: str, *, delay: float = 0.0) -> None:
    """Enqueue the delivery job of (stream, url), now or after `delay` s, through the relay like
    every job (the backoff above is the delay: RQ's retries are not used). Redis down: logged;
    the sweep enqueues it later."""
    try:
        relay.enqueue(ctx, WEBHOOK_DELIVER, {"stream": stream, "url": url}, delay=delay)
    except RedisError as exc:
        log.warning("webhooks: could not enqueue a delivery job (%s); the sweep will", type(exc).__name__)


def redispatch(ctx: ServiceContext) -> int:
    """The sweep: a job for every stream whose oldest pending delivery has been due for a while
    and is not in flight (its job was lost with Redis, or its worker was killed)."""
    if ctx.settings.redis_url is None:
        return 0
    now = ctx.clock.now()
    with reading(ctx.sessions) as session:  # a plain read: the sweep runs every 10 s (no SQLite write lock)
        heads = store.due_heads(session, now, now - timedelta(seconds=SWEEP_GRACE_SECONDS), SWEEP_BATCH)
    for stream, url in heads:
        kick(ctx, stream, url)
    return len(heads)
