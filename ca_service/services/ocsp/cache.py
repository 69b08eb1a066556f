"""Cache of signed OCSP responses, keyed by (issuer, serial) and the CertID hash algorithm: in
Redis, shared by every process, and in front of it a bounded in-process LRU (a Redis round trip
costs more CPU than a P-256 signature; the local hit costs a dict lookup).

Pre-signed responses: in an API server an LRU hit is served without reading the
database while the process's invalidation watch is live (services/ocsp/invalidation: a revocation
drops the entries in every process within a second, by Redis pub/sub and by polling the CAs'
revocation counters). Otherwise -- the watch not live, or a Redis hit -- the cached response is
only served when its certStatus equals the status the database gives now: neither a Redis entry
written around a revocation nor one planted by whoever can write to Redis (an old, genuinely
signed `good`) is ever served for a revoked certificate. A Redis hit so saves the signature, not
the read. `invalidate` (called after a revocation
commits) drops the local and Redis entries and tells the other processes. Entries live until
nextUpdate minus a margin, checked against the service clock as well as the Redis TTL. Redis is
optional on this path: on any Redis error the responder signs from the database, and Redis is
skipped for a few seconds (circuit breaker) so an outage costs no timeouts per request.

Redis is not trusted with what an entry says: each value carries an
HMAC-SHA256 over its key, label, nextUpdate and DER under a key Redis does not hold
(pki/integrity.py), so an entry planted under another key or label, or with another date, is
never read back; and before a Redis entry is served the responder checks its DER says the
requested CertID and the database's status (services/ocsp/responder._agrees). The LRU, in the
process's own memory, holds only entries that passed (or that this process signed).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ca_service import metrics
from ca_service.context import REDIS_ERRORS, ServiceContext
from ca_service.services.ocsp import invalidation as ocsp_invalidation
from ca_service.services.ocsp.state import CachedResponse, OcspState
from ca_service.store.authorities import ski_of
from ca_service.store.db import reading

log = logging.getLogger("ca_service.ocsp")

HASH_NAMES = ocsp_invalidation.HASH_NAMES
MAC_PURPOSE = "ocsp-cache"
MAC_HEX = 64  # hex digits of an HMAC-SHA256


def _mac(ctx: ServiceContext, key: str, status: bytes, stamp: bytes, der: bytes) -> bytes:
    return ctx.integrity.mac(MAC_PURPOSE, key.encode(), status, stamp, der).hex().encode()


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
    tags = ctx.local(OcspState).issuer_tags
    tag = tags.get(issuer_id)
    if tag is None:
        with reading(ctx.sessions) as session:
            ski = ski_of(session, issuer_id)
        if ski is None:
            return f"id{issuer_id}"
        tag = tags[issuer_id] = ski
    return tag


def cache_prefix(ctx: ServiceContext, issuer_id: int, serial: str) -> str:
    """The part of the cache keys that names one certificate (what an invalidation carries)."""
    return f"ca:ocsp:{issuer_tag(ctx, issuer_id)}:{serial}"


def cache_key(ctx: ServiceContext, issuer_id: int, serial: str, hash_name: str) -> str:
    return f"{cache_prefix(ctx, issuer_id, serial)}:{hash_name}"


def local_hit(ctx: ServiceContext, key: str) -> CachedResponse | None:
    """The LRU's fresh entry for `key`, if any (no Redis, no database)."""
    local = ctx.local(OcspState).local.get(key)
    return local if local is not None and _fresh(ctx, local.next_update) else None


def margin(ctx: ServiceContext) -> timedelta:
    """Re-sign once less than this is left before nextUpdate (a quarter of the validity)."""
    return timedelta(minutes=ctx.settings.ocsp_validity_minutes) / 4


def _available(ctx: ServiceContext) -> bool:
    if ctx.settings.redis_url is None:
        return False
    return ctx.local(OcspState).redis.allows()


def _failed(ctx: ServiceContext, exc: Exception, what: str) -> None:
    ctx.local(OcspState).redis.trip()
    metrics.OCSP_CACHE.labels("error").inc()
    log.warning("OCSP cache %s failed (%s); answering from the database", what, type(exc).__name__)


def get(ctx: ServiceContext, key: str) -> CachedResponse | None:
    """The LRU's or Redis's fresh entry for `key` (not yet checked against any status: the
    caller puts a Redis entry into the LRU once it has, with `put_local`)."""
    local = local_hit(ctx, key)
    if local is not None:
        return local
    if not _available(ctx):
        return None
    try:
        raw = ctx.redis().get(key)
    except REDIS_ERRORS as exc:
        _failed(ctx, exc, "read")
        return None
    if not isinstance(raw, bytes):
        return None
    try:
        status, stamp, tag, der = raw.split(b" ", 3)
        if len(tag) != MAC_HEX or not ctx.integrity.verify(
            MAC_PURPOSE, bytes.fromhex(tag.decode()), key.encode(), status, stamp, der
        ):
            _rejected(key)
            return None
        next_update = datetime.fromtimestamp(int(stamp), UTC)
        found = CachedResponse(status.decode(), next_update, der, checked=False)
    except (ValueError, UnicodeDecodeError):
        _rejected(key)
        return None
    return found if _fresh(ctx, next_update) else None


def _rejected(key: str) -> None:
    """An entry this service did not write (or wrote in an older format): ignored, re-signed."""
    metrics.OCSP_CACHE.labels("rejected").inc()
    log.warning("OCSP cache entry %s carries no valid MAC; ignored", key)


def put_local(ctx: ServiceContext, key: str, entry: CachedResponse, generation: int) -> None:
    """Into the LRU, unless a drop happened since `generation` was read (before the status was)."""
    state = ctx.local(OcspState)
    with state.generation_lock:
        if ocsp_invalidation.may_put(ctx, key, generation):  # else a drop came after the status was read
            state.local.put(key, entry)


def put(ctx: ServiceContext, key: str, generation: int, entry: CachedResponse) -> None:
    ttl = int((entry.next_update - margin(ctx) - ctx.clock.now()).total_seconds())
    if ttl <= 0:
        return
    put_local(ctx, key, entry, generation)
    if not _available(ctx):
        return
    status, stamp = entry.status.encode(), b"%d" % int(entry.next_update.timestamp())
    value = b" ".join((status, stamp, _mac(ctx, key, status, stamp, entry.der), entry.der))
    try:
        ctx.redis().set(key, value, ex=ttl)
    except REDIS_ERRORS as exc:
        _failed(ctx, exc, "write")


def invalidate(ctx: ServiceContext, issuer_id: int, serial: str) -> None:
    """Drop the cached responses for one certificate in this process, in Redis and (pub/sub) in
    every API process, after its revocation commits. Never raises: if Redis fails here, the other
    processes still drop theirs at their next revocation-counter poll, and Redis hits are always
    compared with the database."""
    try:
        prefix = cache_prefix(ctx, issuer_id, serial)
        keys = [f"{prefix}:{name}" for name in HASH_NAMES]
        ocsp_invalidation.drop(ctx, keys)  # this process's copies
        if ctx.settings.redis_url is not None:
            ctx.redis().delete(*keys)
            ocsp_invalidation.publish(ctx, prefix)  # the other processes' copies, at once
    except Exception as exc:
        log.warning("OCSP cache invalidation for %s failed (%s); entries expire on their own", serial, type(exc).__name__)
