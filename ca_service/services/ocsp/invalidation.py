"""Keeping each API process's pre-signed OCSP responses fresh across revocations.

A response in the process's LRU is served without reading the database only while this
process's watch is *live*. The watch is one daemon thread per API process (started on the first
OCSP request, after gunicorn forked the worker) that:

- polls every CA's revocation counter (store.hot_reads.revocation_counts: a few rows, one round
  trip) every POLL_SECONDS. Every revocation bumps its issuer's counter in its own transaction
  (store.certificates.revoke), so a changed counter means a revocation committed since the last
  poll: the whole LRU is dropped. This alone bounds the staleness, whatever happens to Redis or
  to the revoking process after its commit;
- between polls, listens on the Redis channel CHANNEL, on which `ocsp_cache.invalidate` (called
  right after a revocation commits) names the certificate: its entries are dropped within
  milliseconds. Redis down or the subscription lost: only the polls remain.

Live means: the last poll *started* less than LIVE_SECONDS ago (its snapshot is at least that
recent). Only then is an LRU entry served without the database read (never a Redis entry:
ocsp_cache); otherwise the responder compares the cached status with the database. So after a
revocation commits, every process answers `revoked` within LIVE_SECONDS + one poll's duration
(tests/e2e/test_ocsp_staleness.py measures it across the workers of a real gunicorn).

Every drop bumps the LRU's generation (state.py) and notes which keys (or all) it dropped; a request that
read the status before a drop of its key does not put its (possibly stale) response into the LRU
after it (ocsp_cache.put_local, `may_put`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ca_service.background_watch import Watching
from ca_service.context import REDIS_ERRORS, ServiceContext
from ca_service.services.ocsp.state import OcspState
from ca_service.store.hot_reads import revocation_counts

log = logging.getLogger("ca_service.ocsp")
CHANNEL = "ca:ocsp:invalidate"
# the CertID hash algorithms a response is cached under (cache.py): a drop drops every variant
HASH_NAMES = ("sha1", "sha224", "sha256", "sha384", "sha512")
POLL_SECONDS = 0.25
LIVE_SECONDS = 0.75  # hits skip the database only if the last poll started less than this ago
MAX_DROPPED = 10_000  # keys remembered as dropped (for puts that raced with their drop)


def snapshot(ctx: ServiceContext) -> tuple[int, bool]:
    """The LRU's generation (read before the status), and whether the watch is live: may an LRU
    hit be served without reading the status from the database?"""
    state = ctx.local(OcspState)
    generation = state.generation
    if not state.presigned:
        return generation, False
    if not state.watch.started():
        state.watch.start(lambda watching: _Watch(ctx, watching).run())
        return generation, False
    return generation, state.watch.live()


def _new_counts(ctx: ServiceContext, counts: dict[int, int]) -> None:
    state = ctx.local(OcspState)
    with state.generation_lock:
        # A CA row added since (a new responder or issuing CA) starts at 0: not a revocation.
        changed = any(count != state.revocation_counts.get(ca_id, 0) for ca_id, count in counts.items())
        state.revocation_counts = counts
        if changed:
            state.generation += 1
            state.cleared_at = state.generation
            state.dropped.clear()
            state.local.clear()


def drop(ctx: ServiceContext, keys: list[str]) -> None:
    state = ctx.local(OcspState)
    with state.generation_lock:
        state.generation += 1
        if len(state.dropped) > MAX_DROPPED:  # forget the keys: refuse every put begun before now
            state.dropped.clear()
            state.cleared_at = state.generation
        for key in keys:
            state.dropped[key] = state.generation
        state.local.drop(keys)


def may_put(ctx: ServiceContext, key: str, generation: int) -> bool:
    """Neither the whole LRU nor `key` was dropped since `generation` (call under generation_lock)."""
    state = ctx.local(OcspState)
    return state.cleared_at <= generation and state.dropped.get(key, 0) <= generation


def publish(ctx: ServiceContext, key_prefix: str) -> None:
    """Tell every API process to drop the entries under `key_prefix` (ocsp_cache.cache_prefix)."""
    ctx.redis().publish(CHANNEL, key_prefix)


class _Watch:
    def __init__(self, ctx: ServiceContext, watching: Watching) -> None:
        self.ctx = ctx
        self.watching = watching
        self.pubsub: Any = None
        self.poll_failed = False

    def run(self) -> None:
        while not self.watching.stopped:
            self.poll()
            deadline = time.monotonic() + POLL_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                prefix = self.listen(left)
                if prefix is not None:
                    drop(self.ctx, [f"{prefix}:{name}" for name in HASH_NAMES])
        if self.pubsub is not None:
            self.pubsub.close()
        self.ctx.hot_reader.close()  # this thread's connection (the polls'), not left to the garbage collector

    def poll(self) -> None:
        started = time.monotonic()
        try:
            counts = revocation_counts(self.ctx.hot_reader)
        except Exception as exc:  # the database is down: no longer live, hits compare with it
            if not self.poll_failed:
                log.warning("OCSP invalidation poll failed (%s); cached responses are checked against the database", exc)
            self.poll_failed = True
            return
        self.poll_failed = False
        _new_counts(self.ctx, dict(counts))
        self.watching.live_until = started + LIVE_SECONDS

    def listen(self, timeout: float) -> str | None:
        """The key prefix of one invalidation message, or None after `timeout` seconds."""
        if self.ctx.settings.redis_url is None:
            time.sleep(timeout)
            return None
        try:
            if self.pubsub is None:
                self.pubsub = self.ctx.redis().pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(CHANNEL)
            message = self.pubsub.get_message(timeout=timeout)
        except REDIS_ERRORS:
            self.pubsub = None  # resubscribe after the next poll; the polls keep the bound meanwhile
            time.sleep(timeout)
            return None
        if message is None or message.get("type") != "message":
            return None
        data = message.get("data")
        return data.decode() if isinstance(data, bytes) else None
