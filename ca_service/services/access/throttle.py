"""Repeated bad tokens from one address are throttled.

After CA_AUTH_FAILURE_LIMIT requests with a wrong, expired or disabled token from one client
address within CA_AUTH_FAILURE_WINDOW_SECONDS (a fixed window opened by the first failure),
every request from that address that presents a bad token gets 429 too-many-authentication-failures
until the window closes. A request with a valid token is never refused (a burst of
bad tokens from the front end's own address, a shared NAT or a bug, would lock its valid login checks
out for the whole window): the token is checked first (the per-process cache, else one indexed
read), and only a token that fails is throttled. That a blocked guesser can still tell a valid
token from a bad one gives nothing away: tokens are 256-bit random. Requests without a token and
the public endpoints are not affected.

The address is the peer's, or the X-Forwarded-For that a trusted proxy wrote (api/proxy.py):
clients cannot choose it.

Counters live in Redis (shared by every worker and replica, expiring by themselves). An API
server does not ask Redis on every authenticated request: each process keeps a copy of the
blocked addresses (services/access/blocks), told by Redis pub/sub the moment an address reaches the
limit and re-read every second, and asks Redis per request only while that copy is not live.
A bad token always goes to Redis (the counter), and one past the limit is answered 429 from the
count itself, so the copy's lag (milliseconds) never turns a 429 into a 401.

When Redis is unavailable the throttle fails open: requests are authenticated as usual (the
database is the source of truth and a Redis outage must not stop the API; tokens are 256-bit
random, so the throttle is about noise and load, not guessability), a warning is logged, and Redis
is not tried again for a few seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.per_process import Breaker
from ca_service.services.access import blocks as auth_blocks

log = logging.getLogger("ca_service.auth")
KEY = auth_blocks.KEY
RETRY_REDIS_AFTER = 5.0


@dataclass
class ThrottleState:
    """This process's view of the throttle's Redis (`ctx.local(ThrottleState)`)."""

    redis: Breaker = field(default_factory=lambda: Breaker(RETRY_REDIS_AFTER))


def _redis_usable(ctx: ServiceContext) -> bool:
    if ctx.settings.redis_url is None:
        return False
    return ctx.local(ThrottleState).redis.allows()


def _redis_failed(ctx: ServiceContext, exc: Exception) -> None:
    breaker = ctx.local(ThrottleState).redis
    breaker.trip()
    log.warning("auth throttle off for %.0f s: Redis unavailable (%s)", breaker.open_for, type(exc).__name__)


# INCR the address's counter (the first failure opens its window); at the limit, index the address
# with the time its window closes and tell every API process (services/access/blocks). One round trip.
_NOTE_FAILURE = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
if count >= tonumber(ARGV[2]) then
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
  redis.call('PUBLISH', ARGV[4], cjson.encode({ARGV[3], count, ttl}))
end
return {count, ttl}
"""


def blocked_for(ctx: ServiceContext, address: str) -> int | None:
    """Seconds until `address` may present a token again, or None if it may now."""
    if auth_blocks.live(ctx):
        wait = auth_blocks.blocked_for(ctx, address)
    else:
        wait = _ask_redis(ctx, address)
    if wait is not None:
        metrics.AUTH_THROTTLED.inc()
    return wait


def _ask_redis(ctx: ServiceContext, address: str) -> int | None:
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
    return max(1, int(ttl)) if ttl is not None and int(ttl) > 0 else 1


def note_failure(ctx: ServiceContext, address: str) -> int | None:
    """Count one bad token from `address`; the first one opens the window. Returns the seconds to
    wait if this one is past the limit (answer 429, not 401), else None."""
    if not _redis_usable(ctx):
        return None
    limit = ctx.settings.auth_failure_limit
    try:
        script = ctx.redis().register_script(_NOTE_FAILURE)
        count, ttl = script(
            keys=[KEY.format(address), auth_blocks.INDEX],
            args=[ctx.settings.auth_failure_window_seconds, limit, address, auth_blocks.CHANNEL],
        )
    except RedisError as exc:
        _redis_failed(ctx, exc)
        return None
    count, ttl = int(count), max(1, int(ttl))
    if count < limit:
        return None
    auth_blocks.block(ctx, address, ttl)
    if count == limit:
        log.warning("address %s sent %d bad tokens: throttled", address, count)
        return None
    metrics.AUTH_THROTTLED.inc()
    return ttl
