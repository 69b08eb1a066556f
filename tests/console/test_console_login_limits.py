"""Finding 4 (issue 26): console login as a CPU drain and a lock-out switch. argon2 ran for every
attempt, unknown usernames included, with no per-address limit; five wrong passwords from anywhere
locked a real operator out; unknown usernames never locked. Now (services/access/console_login_limits):
a per-address limit before any hashing, a lock-out per address + account with backoff, and
unknown usernames answered and locked exactly like known ones. The password checks are counted
by wrapping the hasher's verify (it still verifies)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from redis import Redis

from ca_service.api.app import create_app
from ca_service.services.access import operators
from tests.support.console import ADMIN, csrf_of, fresh_otp, make_operator

_CSRF = re.compile(r'name="csrf_token" value="[^"]+"')


@pytest.fixture
def app(ctx):
    return create_app(ctx)


@pytest.fixture(autouse=True)
def clean_limits(ctx) -> Iterator[None]:
    def clean() -> None:
        conn = Redis.from_url(ctx.settings.redis_url)
        for key in conn.scan_iter("ca:console-login:*"):
            conn.delete(key)
        conn.close()

    clean()
    yield
    clean()


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The password hashes argon2 verified, in order (the dummy one for unknown accounts too)."""
    seen: list[str] = []
    lock = threading.Lock()

    class Counting(PasswordHasher):
        def verify(self, hash, password):
            with lock:
                seen.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(operators, "_HASHER", Counting())  # the same defaults as operators._HASHER
    return seen


def _attempt(app, address: str, username: str, password: str, otp: str = "000000"):
    client = app.test_client()
    env = {"REMOTE_ADDR": address}
    token = csrf_of(client.get("/console/login", environ_base=env).text)
    form = {"csrf_token": token, "username": username, "password": password, "otp": otp}
    return client.post("/console/login", data=form, environ_base=env)


def test_one_address_cannot_drain_the_cpu_with_login_attempts(ctx, app, api, hashed):
    api.org("acme", login_method="id_password")
    api.user("alice", "acme")
    statuses: list[int] = []
    checks: list[int] = []

    def attacker(i: int) -> None:
        for j in range(3):
            statuses.append(_attempt(app, "198.51.100.7", f"guess{i}x{j}", "wrong").status_code)

    def front_end() -> None:
        for _ in range(5):
            r = api.post("/v1/login-checks", json={"login_id": "alice", "method": "id_password"})
            checks.append(r.status)

    threads = [threading.Thread(target=attacker, args=(i,)) for i in range(12)] + [threading.Thread(target=front_end)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    limit = ctx.settings.console_login_attempts_per_minute
    assert len(statuses) == 36 and checks == [200] * 5
    assert len(hashed) == limit, f"{len(hashed)} passwords hashed for 36 attempts (limit {limit})"
    assert sorted(statuses) == [401] * limit + [429] * (36 - limit)
    refused = _attempt(app, "198.51.100.7", "alice", "wrong")
    assert refused.status_code == 429 and "このアドレスからのログインの試行が多すぎます" in refused.text
    assert len(hashed) == limit  # refused without hashing
    # another address is not limited
    assert _attempt(app, "198.51.100.8", "guess", "wrong").status_code == 401


def test_wrong_passwords_from_one_address_do_not_lock_the_operator_out_elsewhere(ctx, app, hashed):
    creds = make_operator(ctx, "realop")
    failures = ctx.settings.console_lockout_failures
    outsider, desk = "203.0.113.66", "192.0.2.20"
    assert [_attempt(app, outsider, "realop", "wrong").status_code for _ in range(failures)] == [401] * failures
    locked = _attempt(app, outsider, "realop", creds.password)
    assert locked.status_code == 429 and "ロック" in locked.text
    assert len(hashed) == failures  # the locked attempt hashed nothing
    assert _attempt(app, desk, "realop", creds.password, fresh_otp(creds)).status_code == 302
    # backoff: the next lock-out of the same pair lasts twice as long
    conn = Redis.from_url(ctx.settings.redis_url)
    first = [int(conn.ttl(k)) for k in conn.scan_iter("ca:console-login:locked:realop:*")]
    assert len(first) == 1 and 0 < first[0] <= ctx.settings.console_lockout_minutes * 60
    conn.delete(*conn.scan_iter("ca:console-login:locked:realop:*"))  # as if it ran out,
    conn.delete(f"ca:console-login:address:{outsider}")  # and a minute passed
    assert [_attempt(app, outsider, "realop", "wrong").status_code for _ in range(failures)] == [401] * failures
    second = [int(conn.ttl(k)) for k in conn.scan_iter("ca:console-login:locked:realop:*")]
    assert len(second) == 1 and second[0] > ctx.settings.console_lockout_minutes * 60
    conn.close()
    operators.reset(ctx, ADMIN, "realop")  # a colleague's reset lifts every lock of the account
    assert _attempt(app, outsider, "realop", "wrong").status_code == 401


def test_unknown_usernames_answer_and_lock_like_known_ones(ctx, app, hashed):
    make_operator(ctx, "knownop")
    answers = {}
    for name, address in (("knownop", "192.0.2.31"), ("ghostop", "192.0.2.32")):
        before = len(hashed)
        rs = [_attempt(app, address, name, "wrong") for _ in range(ctx.settings.console_lockout_failures + 1)]
        answers[name] = [(r.status_code, _CSRF.sub("", r.text.replace(name, "NAME"))) for r in rs]
        assert len(hashed) - before == ctx.settings.console_lockout_failures, name
    assert answers["knownop"] == answers["ghostop"]
    assert [status for status, _ in answers["ghostop"]][-2:] == [401, 429]
