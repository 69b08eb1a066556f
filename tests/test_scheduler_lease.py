"""The scheduler lease (workers/leader.py) against a real Redis: one holder at a time, a holder
that lost the lease enqueues nothing, and a new holder resumes each periodic job from RQ's cron
history (a job that fell due during the handover runs at once, one just enqueued does not)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from redis import Redis
from redis.exceptions import LockNotOwnedError
from rq import Queue

from tests.support.environment import TestEnvironment
from workers import jobs
from workers.leader import LEASE_KEY, LeaderCronScheduler

# A queue no `ca-service worker` listens to: a worker another test left running on this Redis
# database must not take the jobs this test counts.
TEST_QUEUE = "t-lease"


@pytest.fixture
def conn(test_env: TestEnvironment) -> Iterator[Redis]:
    redis = Redis.from_url(test_env.redis_url)
    redis.delete(LEASE_KEY, "rq:cron_job_history:t-interval", "rq:cron_job_history:t-cron")
    Queue(TEST_QUEUE, connection=redis).empty()
    yield redis
    redis.delete(LEASE_KEY)
    Queue(TEST_QUEUE, connection=redis).empty()
    redis.close()


def test_one_holder_at_a_time_and_a_holder_that_lost_it_enqueues_nothing(conn: Redis) -> None:
    a = LeaderCronScheduler(conn, name="t-a", lease_seconds=30)
    b = LeaderCronScheduler(conn, name="t-b", lease_seconds=30)
    a.register(jobs.sweep_job, TEST_QUEUE, interval=10, name="t-interval")
    assert a.lease.acquire(blocking=False)
    assert not b.lease.acquire(blocking=False)
    assert [j.name for j in a.enqueue_jobs()] == ["t-interval"]
    conn.delete(LEASE_KEY)  # the lease ran out while `a` stalled ...
    assert b.lease.acquire(blocking=False)  # ... and `b` took it
    with pytest.raises(LockNotOwnedError):
        a.enqueue_jobs()
    assert Queue(TEST_QUEUE, connection=conn).count == 1  # only what `a` enqueued while it held the lease
    b.register_death()  # a clean stop releases the lease at once (and tolerates a missing registration)
    assert a.lease.acquire(blocking=False)


def test_a_new_holder_resumes_from_rqs_cron_history(conn: Redis) -> None:
    s = LeaderCronScheduler(conn, name="t-resume", lease_seconds=30)
    interval = s.register(jobs.sweep_job, TEST_QUEUE, interval=60, name="t-interval")
    daily = s.register(jobs.expiry_scan_job, TEST_QUEUE, cron="0 9 * * *", name="t-cron")
    now = time.time()
    conn.zadd(interval.job_history_key, {"job-a": now - 10})  # enqueued 10 s ago by the previous holder
    conn.zadd(daily.job_history_key, {"job-b": now - 2 * 86400})  # last daily run two days ago
    assert interval.should_run()  # a fresh CronScheduler would enqueue it again at once
    s.resume_from_history()
    assert not interval.should_run()  # due 50 s from now, not again at once
    assert daily.should_run()  # fell due while nobody held the lease: at once
    short = LeaderCronScheduler(conn, name="t-short", lease_seconds=9)
    short.register(jobs.sweep_job, TEST_QUEUE, interval=60, name="t-interval")
    short.resume_from_history()  # next due in ~50 s, yet it ticks (renewing the lease) within 3 s
    assert 0 < short.calculate_sleep_interval() <= 3
