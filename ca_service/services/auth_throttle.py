"""Repeated bad tokens from one address are throttled (issue 13, finding 5).

After CA_AUTH_FAILURE_LIMIT requests with a wrong, expired or disabled token from one client
address within CA_AUTH_FAILURE_WINDOW_SECONDS (a fixed window opened by the first failure),
every request from that address that presents a token gets 429 too-many-authentication-failures
until the window closes -- also one with a valid token, so a guesser learns nothing. Requests
without a token and the public endpoints are not affected.

The address is the peer's, or the X-Forwarded-For that a trusted proxy wrote (api/proxy.py):
clients cannot choose it.

Counters live in Redis (shared by every worker and replica, expiring by themselves). When Redis
is unavailable the throttle fails open: requests are authenticated as usual (the database is the
source of truth and a Redis outage must not stop the API; tokens are 256-bit random, so the
throttle is about noise and load, not guessability), a warning is logged, and Redis is not tried
again for a few seconds.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError

from ca_service import metrics
from ca_service.context import ServiceContext

log = logging.getLogger("ca_service.auth")
KEY = "ca:auth-failures:{}"
_RETRY_REDIS_AFTER = 5.0


def _redis_usable(ctx: ServiceContext) -> bool:
    if ctx.settings.redis_url is None:
        return False
    return time.monotonic() >= ctx.auth_throttle_down_until


def _redis_failed(ctx: ServiceContext, exc: Exception) -> None:
    ctx.auth_throttle_down_until = time.monotonic() + _RETRY_REDIS_AFTER
    log.warning("auth throttle off for %.0f s: Redis unavailable (%s)", _RETRY_REDIS_AFTER, type(exc).__name__)


def blocked_for(ctx: ServiceContext, address: str) -> int | None:
    """Seconds until `address` may present a token again, or None if it may now."""
    if not _redis_usable(ctx):
        return None
    key = KEY.format(address)
    try:
        pipe = ctx.redis().pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
    except RedisError as exc:
        _redis_failed(ctx, exc)
        return None
    if count is None or int(count) < ctx.settings.auth_failure_limit:
        return None
    metrics.AUTH_THROTTLED.inc()
    return max(1, int(ttl)) if ttl is not None and int(ttl) > 0 else 1


def note_failure(ctx: ServiceContext, address: str) -> None:
    """Count one bad token from `address`; the first one opens the window."""
    if not _redis_usable(ctx):
        return
    key = KEY.format(address)
    try:
        pipe = ctx.redis().pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, ctx.settings.auth_failure_window_seconds, nx=True)
        count, _ = pipe.execute()
    except RedisError as exc:
        _redis_failed(ctx, exc)
        return
    if int(count) == ctx.settings.auth_failure_limit:
        log.warning("address %s sent %d bad tokens: throttled", address, count)
