"""The bad-token throttle's per-process copy of blocked addresses (issue 16, services/access/blocks).

Each test runs its "processes" (service contexts with their own copy and watch thread, as each
gunicorn worker has) against a private redis-server, so that the commands Redis counts are
theirs alone. The HTTP behaviour through real gunicorn servers is in
tests/security/test_abuse_limits.py."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis

from ca_service.cli.embedded_redis import EmbeddedRedis
from ca_service.context import ServiceContext
from ca_service.services.access import blocks as auth_blocks
from ca_service.services.access import throttle as auth_throttle

LIMIT = 3
ADDRESS = "192.0.2.7"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def process(ctx: ServiceContext, redis_url: str) -> Iterator[Callable[..., ServiceContext]]:
    started: list[ServiceContext] = []

    def make(**settings: object) -> ServiceContext:
        """Another API process: its own copy and watch, the same Redis."""
        fresh = ServiceContext(
            settings=dataclasses.replace(ctx.settings, **{"redis_url": redis_url, "auth_failure_limit": LIMIT, **settings}),
            clock=ctx.clock, engine=ctx.engine, sessions=ctx.sessions, key_backend=ctx.keys,
        )  # fmt: skip
        fresh.local(auth_blocks.AuthBlockState).enabled = True
        started.append(fresh)
        return fresh

    yield make
    for fresh in started:
        fresh.local(auth_blocks.AuthBlockState).watch.stop()  # its thread ends within a second


def _until(check: Callable[[], object], timeout: float = 5.0) -> float:
    """Seconds until `check()` is truthy; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "never happened"
        time.sleep(0.005)
    return time.monotonic() - started


def _live(process: ServiceContext) -> ServiceContext:
    _until(lambda: auth_blocks.live(process))  # the first call starts the watch
    return process


def _commands(url: str) -> int:
    conn = Redis.from_url(url)
    try:
        stats = conn.info("commandstats")
    finally:
        conn.close()
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info",))


def test_a_live_copy_answers_without_asking_redis(process, redis_url):
    """Before issue 16 every authenticated request asked Redis (GET + TTL) whether its address
    was blocked; a live copy answers 1,000 of them with only the watch's own few commands."""
    worker = _live(process())
    before = _commands(redis_url)
    for _ in range(1000):
        assert auth_throttle.blocked_for(worker, ADDRESS) is None
    assert _commands(redis_url) - before < 50  # the watch: ping, TIME, ZRANGEBYSCORE per second


def test_a_copy_that_is_not_live_asks_redis_each_time(process, redis_url):
    worker = process()
    worker.local(auth_blocks.AuthBlockState).enabled = False  # as in the tests' in-process apps, or before the watch is live
    before = _commands(redis_url)
    for _ in range(100):
        auth_throttle.blocked_for(worker, ADDRESS)
    assert _commands(redis_url) - before >= 200  # GET and TTL each time


def test_bad_tokens_past_the_limit_are_answered_from_the_count(process):
    worker = process()
    waits = [auth_throttle.note_failure(worker, ADDRESS) for _ in range(LIMIT + 2)]
    assert waits[:LIMIT] == [None] * LIMIT  # the LIMIT-th is still a 401
    assert all(w is not None and 0 < w <= worker.settings.auth_failure_window_seconds for w in waits[LIMIT:])


def test_a_block_reaches_every_other_process_by_pub_sub(process, monkeypatch):
    monkeypatch.setattr(auth_blocks, "REFRESH_SECONDS", 60.0)  # no re-read: only the message can tell it
    monkeypatch.setattr(auth_blocks, "LIVE_SECONDS", 120.0)
    guessed_at, other = process(), _live(process())
    for _ in range(LIMIT):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    _until(lambda: auth_throttle.blocked_for(other, ADDRESS), timeout=2.0)
    assert 0 < auth_throttle.blocked_for(other, ADDRESS) <= other.settings.auth_failure_window_seconds
    assert auth_throttle.blocked_for(other, "192.0.2.8") is None


def test_a_process_started_after_the_block_reads_it(process):
    guessed_at = process()
    for _ in range(LIMIT):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    late = _live(process())  # missed the message: its first re-read finds the block in the index
    assert auth_throttle.blocked_for(late, ADDRESS) is not None


def test_deleting_the_counter_lifts_the_block_within_a_refresh(process, redis_url):
    guessed_at, other = process(), _live(process())
    for _ in range(LIMIT):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    _until(lambda: auth_throttle.blocked_for(other, ADDRESS))
    Redis.from_url(redis_url).delete(auth_blocks.KEY.format(ADDRESS))  # Redis restarted, or an operator
    _until(lambda: auth_throttle.blocked_for(other, ADDRESS) is None, timeout=3 * auth_blocks.REFRESH_SECONDS)


def test_a_process_blocks_at_its_own_limit(process):
    guessed_at, lenient = process(), _live(process(auth_failure_limit=LIMIT + 2))
    for _ in range(LIMIT):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    _until(lambda: auth_throttle.blocked_for(guessed_at, ADDRESS))
    time.sleep(1.5 * auth_blocks.REFRESH_SECONDS)  # the message and a re-read have both reached it
    assert auth_throttle.blocked_for(lenient, ADDRESS) is None
    for _ in range(2):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    _until(lambda: auth_throttle.blocked_for(lenient, ADDRESS))


def test_a_malformed_message_is_ignored(process, redis_url):
    worker = _live(process())
    conn = Redis.from_url(redis_url)
    for data in (b"not json", b'["192.0.2.9"]', b"[1, 2, 3]", b'["192.0.2.9", "x", 1]'):
        conn.publish(auth_blocks.CHANNEL, data)
    conn.publish(auth_blocks.CHANNEL, f'["{ADDRESS}", {LIMIT}, 60]')
    _until(lambda: auth_throttle.blocked_for(worker, ADDRESS))  # still listening after the bad ones
    assert auth_blocks.live(worker)


def test_with_redis_gone_the_copy_stops_answering_and_the_throttle_fails_open(tmp_path, process, redis_url):
    guessed_at, other = process(), _live(process())
    for _ in range(LIMIT):
        auth_throttle.note_failure(guessed_at, ADDRESS)
    _until(lambda: auth_throttle.blocked_for(other, ADDRESS))
    Redis.from_url(redis_url).shutdown(nosave=True)
    _until(lambda: not auth_blocks.live(other), timeout=2 * auth_blocks.LIVE_SECONDS)
    assert auth_throttle.blocked_for(other, ADDRESS) is None  # Redis asked, unreachable: open
