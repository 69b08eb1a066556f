"""Finding 5 (issue 13): abuse limits. Repeated bad tokens from one address are throttled; every
PostgreSQL connection has statement and lock timeouts; API tokens can expire and be rotated."""

from __future__ import annotations

import json
import time

import pytest
import requests
from redis import Redis
from sqlalchemy import text

from ca_service.services.access import blocks as auth_blocks
from tests.support.api import Api
from tests.support.cli import run_cli
from tests.support.live import free_port


def _clear_auth_throttle(redis_url: str) -> None:
    conn = Redis.from_url(redis_url)
    for key in conn.scan_iter("ca:auth-failures:*"):
        conn.delete(key)
    conn.delete(auth_blocks.INDEX)
    conn.close()


def test_repeated_bad_tokens_from_one_address_are_throttled(ctx, test_env, live_processes, tokens):
    base = live_processes.start_api(workers=2, name="api-throttle", CA_AUTH_FAILURE_LIMIT="10")
    other = live_processes.start_api(workers=1, name="api-throttle-2", CA_AUTH_FAILURE_LIMIT="10")  # a second node
    try:
        # starts the second node's copy of the blocked addresses (services/access/blocks)
        assert (
            requests.get(other + "/v1/users/x", headers={"Authorization": f"Bearer {tokens['frontend']}"}, timeout=10).status_code
            == 404
        )
        statuses = []
        for i in range(15):
            spoofed = {"X-Forwarded-For": f"10.0.{i}.1", "X-Real-IP": f"10.1.{i}.1", "Forwarded": f"for=10.2.{i}.1"}
            r = requests.get(base + "/v1/users/x", headers={"Authorization": f"Bearer cas_guess{i}", **spoofed}, timeout=10)
            statuses.append(r.status_code)
        assert statuses[:10] == [401] * 10, statuses
        assert set(statuses[10:]) == {429}, statuses
        r = requests.get(base + "/v1/users/x", headers={"Authorization": "Bearer cas_guess"}, timeout=10)
        assert r.json()["code"] == "too-many-authentication-failures" and int(r.headers["Retry-After"]) > 0
        # a valid token is never refused (issue 26, finding 6: this test used to expect 429 here,
        # which was the finding: bad tokens from a shared address locked the front end out)
        good = requests.get(base + "/v1/users/x", headers={"Authorization": f"Bearer {tokens['frontend']}"}, timeout=10)
        assert good.status_code == 404 and good.json()["code"] == "user-not-found", good.text
        # another node heard of the block over Redis and refuses bad tokens from its copy, valid ones not
        elsewhere = requests.get(other + "/v1/users/x", headers={"Authorization": "Bearer cas_guess-elsewhere"}, timeout=10)
        assert elsewhere.status_code == 429 and elsewhere.json()["code"] == "too-many-authentication-failures"
        valid = requests.get(other + "/v1/users/x", headers={"Authorization": f"Bearer {tokens['frontend']}"}, timeout=10)
        assert valid.status_code == 404, valid.text
        assert requests.get(base + "/healthz", timeout=10).status_code == 200  # public endpoints stay open
    finally:
        _clear_auth_throttle(test_env.redis_url)
        live_processes.processes["api-throttle"].stop()
        live_processes.processes["api-throttle-2"].stop()


def test_every_postgresql_connection_has_statement_and_lock_timeouts(ctx, test_env):
    if not ctx.is_postgres:
        pytest.skip("PostgreSQL only (SQLite has busy_timeout)")
    with ctx.engine.connect() as conn:
        statement = conn.execute(text("SHOW statement_timeout")).scalar()
        lock = conn.execute(text("SHOW lock_timeout")).scalar()
    assert statement not in (None, "0"), statement
    assert lock not in (None, "0"), lock


def test_a_held_row_lock_answers_503_quickly_instead_of_hanging(ctx, live, live_processes, test_env):
    """A stuck transaction (or an attacker holding locks through a slow client) must not pin every
    gunicorn worker: with lock_timeout the request fails fast with 503 database-unavailable."""
    if not ctx.is_postgres:
        pytest.skip("PostgreSQL only")
    live.org("acme")
    live.user("alice", "acme")
    base = live_processes.start_api(workers=2, name="api-locks", CA_DB_LOCK_TIMEOUT_MS="1000")
    api = Api(live.tokens, base_url=base)
    holder = ctx.engine.connect()
    tx = holder.begin()
    holder.execute(text("SELECT 1 FROM users WHERE login_id = 'alice' FOR UPDATE"))
    try:
        started = time.monotonic()
        try:
            r = api.put("/v1/users/alice", json={"org_id": "acme", "role": "general", "email": "a2@example.com"})
        except requests.Timeout:
            r = None
        elapsed = time.monotonic() - started
    finally:
        tx.rollback()
        holder.close()
        live_processes.processes["api-locks"].stop()
    assert r is not None and r.status == 503 and r.code == "database-unavailable", r
    assert elapsed < 10, elapsed


def _token_works(api: Api, token: str) -> bool:
    r = api.get("/v1/organizations/none", role=None, headers={"Authorization": f"Bearer {token}"})
    assert r.status in (401, 404), r
    return r.status == 404


def _wait_until(check, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_tokens_expire_and_rotate_with_a_grace_period(ctx, live, test_env, clock):
    env = test_env.env()
    created = json.loads(
        run_cli("clients", "create", "--name", "fe-exp", "--role", "frontend", "--expires-in", "90d", "--json", env=env).stdout
    )
    assert created["expires_at"]
    old = created["token"]
    assert _token_works(live, old)
    rotated = json.loads(run_cli("clients", "rotate", "fe-exp", "--grace", "2h", "--json", env=env).stdout)
    new = rotated["token"]
    assert new != old and rotated["previous_token_valid_until"]
    assert _token_works(live, new) and _token_works(live, old)  # both during the grace period
    clock.travel(hours=3)
    assert _wait_until(lambda: not _token_works(live, old))  # the old one is gone after the grace
    assert _token_works(live, new)
    clock.travel(days=91)
    assert _wait_until(lambda: not _token_works(live, new))  # and the new one expires in turn
    events = live.get("/v1/audit-events", role="auditor", params={"limit": 1000}).json["items"]
    assert {"api_client.created", "api_client.rotated"} <= {e["action"] for e in events if e["details"].get("name") == "fe-exp"}


def test_with_redis_down_the_throttle_fails_open_and_the_api_still_answers(ctx, live_processes, tokens):
    """Decided: the bad-token throttle needs Redis; without it authentication works as usual
    (the database stays the only dependency of a request), never a 500 or a stall."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    base = live_processes.start_api(workers=1, name="api-no-redis", REDIS_URL=dead, CA_AUTH_FAILURE_LIMIT="3")
    try:
        started = time.monotonic()
        statuses = [
            requests.get(base + "/v1/users/x", headers={"Authorization": f"Bearer cas_guess{i}"}, timeout=10).status_code
            for i in range(8)
        ]
        assert statuses == [401] * 8
        good = requests.get(base + "/v1/users/x", headers={"Authorization": f"Bearer {tokens['frontend']}"}, timeout=10)
        assert good.status_code == 404  # authenticated; the user does not exist
        assert time.monotonic() - started < 20
    finally:
        live_processes.processes["api-no-redis"].stop()
