"""Issue 27 §6: the test helpers share a machine's Redis with other runs and other people. They
empty only a Redis database this run claimed (or an embedded server it started), keep REDIS_URL's
scheme and credentials, and refuse a socket URL they cannot claim a database on."""

from __future__ import annotations

import pytest
from redis import Redis

from tests.support import environment
from tests.support.workers import empty_queues


def test_emptying_a_database_this_run_did_not_claim_is_refused(test_env):
    conn = Redis.from_url(test_env.redis_url)
    conn.set("mine", "1")
    assert test_env.redis_url in environment.OWNED_REDIS_URLS
    empty_queues(test_env.redis_url)  # this run's own: emptied
    assert conn.get("mine") is None
    with pytest.raises(RuntimeError, match="did not claim or create"):
        empty_queues("redis://127.0.0.1:6379/15")  # refused before any connection is made
    with pytest.raises(RuntimeError, match="did not claim or create"):
        empty_queues("redis://:secret@127.0.0.1:6379/0")


def test_a_claimed_url_keeps_the_scheme_and_credentials():
    assert environment._with_db("rediss://:s3cret@redis.example:6380/0", 7) == "rediss://:s3cret@redis.example:6380/7"
    assert environment._with_db("redis://user:pw@127.0.0.1:6379", 3) == "redis://user:pw@127.0.0.1:6379/3"
    claim = environment.RedisClaim("redis://:pw@127.0.0.1:6379/0", 4, "t")
    assert claim.url() == "redis://:pw@127.0.0.1:6379/4"


def test_a_unix_socket_redis_url_is_refused_rather_than_flushed(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "unix:///run/redis/redis.sock?db=2")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="redis:// or rediss://"):
        environment.create_environment(tmp_path, "gw-hygiene")
