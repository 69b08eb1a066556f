"""Races through a real gunicorn with several workers: renewal, revocation and login-method switches
never leave a login ID with two valid certificates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from ca_service.store.models import Certificate
from tests.support.pki import make_csr


def _valid_count(ctx, login_id: str) -> int:
    now = ctx.clock.now()
    with ctx.sessions() as s:
        return s.scalar(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.login_id == login_id, Certificate.revoked_at.is_(None), Certificate.not_after > now)
        )


def _parallel(live, calls):
    barrier = threading.Barrier(len(calls))

    def run(call):
        api = type(live)(live.tokens, base_url=live.base_url)
        barrier.wait()
        return call(api)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_renewals_yield_one_successor(live, ctx, clock):
    live.org("acme")
    live.user("alice", "acme")
    serial = live.issue("alice", make_csr()[1]).json["serial"]
    clock.travel(days=340)
    csrs = [make_csr()[1] for _ in range(8)]
    results = _parallel(live, [lambda api, c=c: api.post(f"/v1/certificates/{serial}/renewal", json={"csr": c}) for c in csrs])
    assert sorted(r.status for r in results) == [201] + [409] * 7
    assert {r.code for r in results if r.status == 409} <= {"certificate-not-active", "active-certificate-exists"}
    assert _valid_count(ctx, "alice") == 1


def test_concurrent_revocation_and_renewal_leave_at_most_one_valid(live, ctx, clock):
    live.org("acme")
    live.user("boss", "acme", role="master")
    for round_ in range(4):
        login_id = f"alice{round_}"
        live.user(login_id, "acme")
        serial = live.issue(login_id, make_csr()[1]).json["serial"]
        clock.travel(days=340)
        results = _parallel(
            live,
            [
                lambda api, serial=serial: api.post(f"/v1/certificates/{serial}/renewal", json={"csr": make_csr()[1]}),
                lambda api, serial=serial: api.post(
                    f"/v1/certificates/{serial}/revocation", json={"reason": "key_compromise", "acting_login_id": "boss"}
                ),
            ],
        )
        clock.reset()
        renewal, revocation = results
        assert renewal.status in (201, 409) and revocation.status in (200, 409), results
        assert _valid_count(ctx, login_id) <= 1
        if renewal.status == 201:  # the renewal won: the revocation found the certificate superseded
            assert revocation.code == "already-revoked" and _valid_count(ctx, login_id) == 1
        else:
            assert revocation.status == 200 and _valid_count(ctx, login_id) == 0


def test_switch_to_id_password_while_issuing_leaves_no_valid_certificate(live, ctx):
    live.org("acme")
    users = [f"u{i}" for i in range(6)]
    for u in users:
        live.user(u, "acme")
    calls = [lambda api, u=u: api.issue(u, make_csr()[1]) for u in users]
    calls.append(
        lambda api: api.post(
            "/v1/organizations/acme/login-method", role="operator", json={"login_method": "id_password", "ticket": "P-9"}
        )
    )
    results = _parallel(live, calls)
    assert results[-1].status == 200
    assert all(r.status in (201, 409) for r in results[:-1])
    assert sum(_valid_count(ctx, u) for u in users) == 0  # issued before the switch: revoked by it; after: refused
