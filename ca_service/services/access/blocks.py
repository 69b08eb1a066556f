"""Each API process's copy of the addresses the bad-token throttle blocks.

Asking Redis whether the caller's address is blocked costs a request a round trip (only a request
whose token fails asks: a valid one is never refused, and the round trip is a large share of a
login check's time), to learn, nearly always, that it is not. An API server instead keeps the
blocked addresses in memory, kept current by one daemon thread per process (started by the first
authenticated request, after gunicorn forked the worker) that:

- subscribes to CHANNEL, on which auth_throttle.note_failure announces (address, count, seconds
  until its window closes) for every bad token at or past the limit, from the same Redis script
  as the INCR: every process learns of a new block within milliseconds;
- every REFRESH_SECONDS re-reads the addresses in INDEX (those that reached the limit, scored by
  when their window closes) and their counters, and replaces its copy with what it read: a process
  that started or resubscribed late, or holds a block whose counter is gone (Redis restarted, an
  operator deleted the key), agrees with Redis again within a second;
- pings through the subscription at each refresh. The copy is *live* while the last pong (which
  follows a successful refresh on the same thread) came back less than LIVE_SECONDS ago, and while
  fewer than MAX_ADDRESSES addresses are blocked. Only a live copy answers; otherwise
  auth_throttle asks Redis on each request as before (and fails open when Redis is down).

A process blocks an address when its counter is at or past the process's own
CA_AUTH_FAILURE_LIMIT (every API process of a deployment has the same).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

from ca_service.background_watch import BackgroundWatch, Watching
from ca_service.context import REDIS_ERRORS, ServiceContext

log = logging.getLogger("ca_service.auth")
KEY = "ca:auth-failures:{}"  # an address's bad-token counter, expiring when its window closes
INDEX = "ca:auth-failure-addresses"  # sorted set: addresses that reached the limit -> window close (epoch s)
CHANNEL = "ca:auth-failures"  # pub/sub: JSON [address, count, seconds left]
REFRESH_SECONDS = 1.0
LIVE_SECONDS = 3.0
MAX_ADDRESSES = 10_000  # more blocked at once (a wide attack): ask Redis per request instead
_RETRY_SECONDS = 1.0


@dataclass
class AuthBlockState:
    """This process's copy of the addresses the bad-token throttle blocks (`ctx.local(AuthBlockState)`)."""

    enabled: bool = False  # on in API servers (api/app.py), off in tests' in-process apps
    watch: BackgroundWatch = field(default_factory=lambda: BackgroundWatch("auth-blocks"))
    blocked: dict[str, float] = field(default_factory=dict)  # address -> monotonic time its window closes
    lock: threading.Lock = field(default_factory=threading.Lock)


def live(ctx: ServiceContext) -> bool:
    """May this process answer `blocked_for` from its copy instead of asking Redis?"""
    state = ctx.local(AuthBlockState)
    if not state.enabled or ctx.settings.redis_url is None:
        return False
    if not state.watch.started():
        state.watch.start(lambda watching: _Watch(ctx, state, watching).run(), on_start=lambda: _forget(state))
        return False
    return state.watch.live()


def _forget(state: AuthBlockState) -> None:
    with state.lock:
        state.blocked = {}


def blocked_for(ctx: ServiceContext, address: str) -> int | None:
    """Whole seconds until the copy's block of `address` ends, or None if it holds none."""
    closes = ctx.local(AuthBlockState).blocked.get(address)
    if closes is None:
        return None
    left = closes - time.monotonic()
    return max(1, math.ceil(left)) if left > 0 else None


def block(ctx: ServiceContext, address: str, seconds: int) -> None:
    """Hold `address` blocked for `seconds` (what Redis says is left of its window)."""
    state = ctx.local(AuthBlockState)
    with state.lock:
        state.blocked[address] = time.monotonic() + seconds


class _Watch:
    def __init__(self, ctx: ServiceContext, state: AuthBlockState, watching: Watching) -> None:
        self.ctx = ctx
        self.state = state
        self.watching = watching
        self.pubsub: Any = None
        self.next_refresh = 0.0
        self.last_pong = 0.0
        self.too_many = False
        self.failed = False

    def run(self) -> None:
        watching = self.watching
        while not watching.stopped:
            try:
                self.step()
                self.failed = False
            except REDIS_ERRORS as exc:
                watching.live_until = 0.0
                if not self.failed:
                    log.warning("bad-token throttle: Redis asked per request (%s: %s)", type(exc).__name__, exc)
                self.failed = True
                self.close()
                watching.wait(_RETRY_SECONDS)
        self.close()

    def step(self) -> None:
        if self.pubsub is None:
            self.pubsub = self.ctx.redis().pubsub()
            self.pubsub.subscribe(CHANNEL)
            self.next_refresh = self.last_pong = time.monotonic()
        now = time.monotonic()
        if now - self.last_pong > LIVE_SECONDS:
            raise ConnectionError(f"no pong from Redis for {now - self.last_pong:.1f} s")
        if now >= self.next_refresh:
            self.pubsub.ping()
            self.refresh()
            self.next_refresh = now + REFRESH_SECONDS
        message = self.pubsub.get_message(timeout=max(0.0, self.next_refresh - time.monotonic()))
        if message is not None:
            self.handle(message)

    def refresh(self) -> None:
        redis = self.ctx.redis()
        seconds, _ = cast(tuple[int, int], redis.time())  # redis-py types its sync client's replies as maybe-awaitable
        members = cast(list[bytes], redis.zrangebyscore(INDEX, seconds, "+inf", start=0, num=MAX_ADDRESSES + 1))
        addresses = [a.decode() for a in members]
        self.too_many = len(addresses) > MAX_ADDRESSES
        if self.too_many:
            self.watching.live_until = 0.0
            return
        pipe = redis.pipeline(transaction=False)
        for address in addresses:
            pipe.get(KEY.format(address))
            pipe.ttl(KEY.format(address))
        values = pipe.execute() if addresses else []
        limit = self.ctx.settings.auth_failure_limit
        read_at = time.monotonic()
        blocked = {}
        for address, count, ttl in zip(addresses, values[0::2], values[1::2], strict=True):
            if count is not None and int(count) >= limit and int(ttl) > 0:
                blocked[address] = read_at + int(ttl)
        with self.state.lock:
            self.state.blocked = blocked

    def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "pong":
            self.last_pong = time.monotonic()
            if not self.too_many:
                self.watching.live_until = self.last_pong + LIVE_SECONDS
        elif kind == "message":
            try:
                address, count, seconds = json.loads(message["data"])
                if isinstance(address, str) and int(count) >= self.ctx.settings.auth_failure_limit:
                    block(self.ctx, address, max(1, int(seconds)))
            except (ValueError, TypeError):
                log.warning("bad-token throttle: ignored a malformed message on %s", CHANNEL)

    def close(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except REDIS_ERRORS:
                pass
            self.pubsub = None
