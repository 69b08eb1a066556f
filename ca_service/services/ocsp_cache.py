"""Cache of signed OCSP responses, keyed by (issuer, serial) and the CertID hash algorithm: in
Redis, shared by every process, and in front of it a bounded in-process LRU (a Redis round trip
costs more CPU than a P-256 signature; the local hit costs a dict lookup).

A cached response is only served when its certStatus equals the status the database gives now
(the responder reads it on every request, a point lookup), so a missed invalidation can never
serve a stale `good` for a revoked certificate; `invalidate` (called after a revocation commits)
just drops the entries at once. Entries live until nextUpdate minus a margin, checked against the
service clock as well as the Redis TTL. Redis is optional on this path: on any Redis error the
responder signs from the database, and Redis is skipped for a few seconds (circuit breaker) so an
outage costs no timeouts per request. The local copies need no cross-process invalidation for
the same reason Redis needs none for correctness: the status is compared on every request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.store.authorities import ski_of
from ca_service.store.db import reading

log = logging.getLogger("ca_service.ocsp")

HASH_NAMES = ("sha1", "sha224", "sha256", "sha384", "sha512")
BREAKER_SECONDS = 5.0
_ERRORS = (RedisError, OSError, RuntimeError)  # RuntimeError: REDIS_URL not set


@dataclass(frozen=True)
class CachedResponse:
    status: str
    next_update: datetime
    der: bytes


def this_update_of(ctx: ServiceContext, next_update: datetime) -> datetime:
    """A cached response's thisUpdate (only its nextUpdate is stored: responses are signed with
    nextUpdate = thisUpdate + CA_OCSP_VALIDITY_MINUTES)."""
    return next_update - timedelta(minutes=ctx.settings.ocsp_validity_minutes)


def _fresh(ctx: ServiceContext, next_update: datetime) -> bool:
    """Inside [thisUpdate, nextUpdate - margin) by the service clock (a clock moved back by an
    operator, or by the tests, never gets a response dated in its future)."""
    return this_update_of(ctx, next_update) <= ctx.clock.now() < next_update - margin(ctx)


def issuer_tag(ctx: ServiceContext, issuer_id: int) -> str:
    """The issuing CA's key identifier (hex), read once per process: unlike the row id it is the
    same in every database, so two deployments (or test runs) sharing a Redis never collide."""
    tags = ctx.ocsp.issuer_tags
    tag = tags.get(issuer_id)
    if tag is None:
        with reading(ctx.sessions) as session:
            ski = ski_of(session, issuer_id)
        if ski is None:
            return f"id{issuer_id}"
        tag = tags[issuer_id] = ski
    return tag


def cache_key(ctx: ServiceContext, issuer_id: int, serial: str, hash_name: str) -> str:
    return f"ca:ocsp:{issuer_tag(ctx, issuer_id)}:{serial}:{hash_name}"


def margin(ctx: ServiceContext) -> timedelta:
    """Re-sign once less than this is left before nextUpdate (a quarter of the validity)."""
    return timedelta(minutes=ctx.settings.ocsp_validity_minutes) / 4


def _available(ctx: ServiceContext) -> bool:
    if ctx.settings.redis_url is None:
        return False
    return time.monotonic() >= ctx.ocsp.redis_down_until


def _failed(ctx: ServiceContext, exc: Exception, what: str) -> None:
    ctx.ocsp.redis_down_until = time.monotonic() + BREAKER_SECONDS
    metrics.OCSP_CACHE.labels("error").inc()
    log.warning("OCSP cache %s failed (%s); answering from the database", what, type(exc).__name__)


def get(ctx: ServiceContext, issuer_id: int, serial: str, hash_name: str) -> CachedResponse | None:
    key = cache_key(ctx, issuer_id, serial, hash_name)
    local_cache = ctx.ocsp.local
    local = local_cache.get(key)
    if local is not None and _fresh(ctx, local.next_update):
        return local
    if not _available(ctx):
        return None
    try:
        raw = ctx.redis().get(key)
    except _ERRORS as exc:
        _failed(ctx, exc, "read")
        return None
    if not isinstance(raw, bytes):
        return None
    try:
        status, stamp, der = raw.split(b" ", 2)
        next_update = datetime.fromtimestamp(int(stamp), UTC)
    except ValueError:
        return None
    if not _fresh(ctx, next_update):
        return None
    found = CachedResponse(status.decode(), next_update, der)
    local_cache.put(key, found)
    return found


def put(ctx: ServiceContext, issuer_id: int, serial: str, hash_name: str, status: str, next_update: datetime, der: bytes) -> None:
    ttl = int((next_update - margin(ctx) - ctx.clock.now()).total_seconds())
    if ttl <= 0:
        return
    key = cache_key(ctx, issuer_id, serial, hash_name)
    ctx.ocsp.local.put(key, CachedResponse(status, next_update, der))
    if not _available(ctx):
        return
    value = b"%s %d %s" % (status.encode(), int(next_update.timestamp()), der)
    try:
        ctx.redis().set(key, value, ex=ttl)
    except _ERRORS as exc:
        _failed(ctx, exc, "write")


def invalidate(ctx: ServiceContext, issuer_id: int, serial: str) -> None:
    """Drop the cached responses for one certificate (after its revocation commits). Never raises:
    the responder checks the status in the database anyway."""
    try:
        keys = [cache_key(ctx, issuer_id, serial, name) for name in HASH_NAMES]
        ctx.ocsp.local.drop(keys)  # this process's copies; the others' are never served (status compared)
        if ctx.settings.redis_url is not None:
            ctx.redis().delete(*keys)
    except Exception as exc:
        log.warning("OCSP cache invalidation for %s failed (%s); entries expire on their own", serial, type(exc).__name__)
