"""16 concurrent issuance requests for one login ID against a real gunicorn with several workers:
exactly one 201, fifteen 409 active-certificate-exists, one row."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from ca_service.context import Actor
from ca_service.errors import Conflict
from ca_service.services.authority import hierarchy as authorities
from ca_service.services.certificates import issuance
from ca_service.services.certificates.views import CertificateView
from ca_service.store.models import Certificate
from tests.support.pki import make_csr


def test_sixteen_concurrent_issuances_yield_exactly_one_certificate(live, ctx):
    live.org("acme")
    live.user("alice", "acme")
    csrs = [make_csr()[1] for _ in range(16)]
    barrier = threading.Barrier(16)

    def attempt(csr: str):
        api = type(live)(live.tokens, base_url=live.base_url)  # one HTTP connection per thread
        barrier.wait()
        return api.issue("alice", csr)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, csrs))
    statuses = sorted(r.status for r in results)
    assert statuses == [201] + [409] * 15, [r for r in results if r.status not in (201, 409)]
    assert {r.code for r in results if r.status == 409} == {"active-certificate-exists"}
    winner = next(r.json["serial"] for r in results if r.status == 201)
    assert all(r.json["serial"] == winner for r in results if r.status == 409)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Certificate).where(Certificate.login_id == "alice")) == 1


def test_concurrent_issuances_for_different_users_all_succeed(live, ctx):
    live.org("acme")
    for i in range(8):
        live.user(f"u{i}", "acme")

    def attempt(i: int):
        api = type(live)(live.tokens, base_url=live.base_url)
        return api.issue(f"u{i}", make_csr()[1])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert [r.status for r in results] == [201] * 8


def test_issuances_queued_on_the_user_lock_name_the_winner(api, ctx):
    """Two issuances wait on alice's row lock; when it is released the first wins and the second,
    whose snapshot predates the winner's commit, is refused by the UNIQUE current_login_id and
    still names the winner's serial (the contract for active-certificate-exists)."""
    if not ctx.is_postgres:
        pytest.skip("PostgreSQL row locks (SQLite serialises whole write transactions)")
    api.org("acme")
    api.user("alice", "acme")
    actor = Actor(client_name="race-test", role="frontend")
    authorities.active_issuer(ctx)  # the issuing key is decrypted once, before the race
    outcomes: list[object] = []

    def issue(csr: str) -> None:
        try:
            outcomes.append(issuance.issue_certificate(ctx, actor, "alice", csr)[0])
        except Conflict as exc:
            outcomes.append(exc)

    with ctx.engine.connect() as holder:
        holder.execute(text("SELECT 1 FROM users WHERE login_id = 'alice' FOR UPDATE"))
        threads = [threading.Thread(target=issue, args=(make_csr()[1],)) for _ in range(2)]
        for t in threads:
            t.start()
        # autocommit: PostgreSQL keeps one pg_stat_activity snapshot per transaction, so a probe
        # inside one transaction would never see the issuances arrive at the lock
        with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as probe:
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            for _ in range(200):
                if probe.execute(text(waiting)).scalar() == 2:
                    break
                time.sleep(0.02)
            else:
                activity = "SELECT state, wait_event, left(query, 60) FROM pg_stat_activity WHERE datname = current_database()"
                pytest.fail(f"the issuances never queued on the row lock: {probe.execute(text(activity)).all()} {outcomes}")
        holder.rollback()
    for t in threads:
        t.join(30)
    winners = [o for o in outcomes if isinstance(o, CertificateView)]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].code == "active-certificate-exists"
    assert "a concurrent issuance" in losers[0].detail  # the constraint, not the read, refused it
    assert losers[0].extra["serial"] == winners[0].serial
