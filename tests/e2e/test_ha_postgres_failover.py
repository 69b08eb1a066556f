"""PostgreSQL failover (issue 18): a primary and a synchronous streaming standby on this machine,
DATABASE_URL naming both with target_session_attrs=read-write. The primary crashes; while no
server accepts writes the API answers 503 database-unavailable (never 500); the standby is
promoted and the same processes (no restart) serve again; a revocation committed just before the
crash is on the new primary, refused at login, and on the next CRL (read with openssl).

Marked `ha`: CI runs it in a step of its own (.ci/run)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support.api import Api
from tests.support.background import PrivateRedis, wait_for
from tests.support.cli import run_cli
from tests.support.ha import PgPair, pg_bindir, serials_on_published_crl
from tests.support.pki import make_csr

pytestmark = [pytest.mark.ha, pytest.mark.skipif(pg_bindir() is None, reason="needs the PostgreSQL server binaries")]


@pytest.fixture
def pair() -> Iterator[PgPair]:
    servers = PgPair()
    servers.start("ca")
    yield servers
    servers.stop()


def test_failover_to_the_standby_loses_nothing_and_needs_no_restart(pair, live_processes, test_env, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    env = test_env.env(DATABASE_URL=pair.url("ca"), CA_DATA_DIR=str(tmp_path / "data"), REDIS_URL=redis.url)
    run_cli("init", env=env)
    tokens = {
        role: json.loads(run_cli("clients", "create", "--name", f"ha-{role}", "--role", role, "--json", env=env).stdout)["token"]
        for role in ("frontend", "operator")
    }
    extra = {k: env[k] for k in ("DATABASE_URL", "CA_DATA_DIR", "REDIS_URL")}
    stamp = time.monotonic_ns()
    names = [f"api-pg-{stamp}", f"worker-pg-{stamp}", f"scheduler-pg-{stamp}"]
    base = live_processes.start_api(workers=2, name=names[0], **extra)
    live_processes.start(names[1], ["worker"], **extra)
    live_processes.start(names[2], ["scheduler"], **extra)
    api = Api(tokens, base_url=base)
    api.org("acme")
    for login_id in ("alice", "bob"):
        api.user(login_id, "acme")
    alice = api.issue("alice", make_csr()[1]).json
    bob = api.issue("bob", make_csr()[1]).json
    assert api.get("/v1/users/alice").status == 200  # every pooled connection is on the primary

    # committed just before the crash: with synchronous replication the standby has it
    assert (
        api.post(f"/v1/certificates/{bob['serial']}/revocation", role="operator", json={"reason": "key_compromise"}).status == 200
    )
    pair.crash_primary()
    outage = [api.get("/v1/users/alice") for _ in range(5)]
    outage.append(api.post(f"/v1/certificates/{alice['serial']}/revocation", role="operator", json={"reason": "unspecified"}))
    outage.append(
        api.post("/v1/login-checks", json={"login_id": "bob", "method": "certificate", "certificate_pem": bob["certificate_pem"]})
    )
    assert [(r.status, r.code) for r in outage] == [(503, "database-unavailable")] * len(outage)
    assert all(r.headers.get("Retry-After") for r in outage)

    pair.promote_standby()
    seen: list[int] = []

    def serving() -> bool:
        seen.append(api.get("/v1/users/alice").status)
        return seen[-1] == 200

    wait_for(serving, timeout=60, interval=0.5)  # the same processes: no restart
    assert set(seen) <= {200, 503}, seen  # never a 500 on the way back
    assert api.get(f"/v1/certificates/{bob['serial']}").json["status"] == "revoked"  # not lost
    login = api.post(
        "/v1/login-checks", json={"login_id": "bob", "method": "certificate", "certificate_pem": bob["certificate_pem"]}
    )
    assert login.status == 200 and login.json["allowed"] is False and login.json["reason"] == "revoked"
    assert pair.psql(1, "SELECT pg_is_in_recovery()") == "f"  # the standby is the primary now

    revoked = api.post(f"/v1/certificates/{alice['serial']}/revocation", role="operator", json={"reason": "unspecified"})
    assert revoked.status == 200  # writes work on the new primary
    wait_for(lambda: {int(bob["serial"], 16), int(alice["serial"], 16)} <= serials_on_published_crl(api, tmp_path), timeout=60)
    for name in names:
        assert live_processes.processes[name].alive()  # nothing was restarted
        assert live_processes.processes[name].stop() == 0
    redis.stop()
