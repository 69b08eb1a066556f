"""A Redis restart that loses every queue (no persistence) after it had accepted the jobs
(issue 18): the revocation still reaches the CRL and the notice email still arrives, once; the
worker and the scheduler reconnect by themselves. Checked at the SMTP server and with openssl."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue

from tests.support.api import Api
from tests.support.background import PrivateRedis, SmtpServer, wait_for
from tests.support.cli import run_cli
from tests.support.ha import serials_on_published_crl
from tests.support.pki import make_csr
from tests.support.workers import insert_certificates

pytestmark = pytest.mark.ha  # slow: their own CI step (.ci/run)


def test_redis_restarted_empty_loses_no_publication_and_no_email(ctx, live_processes, test_env, tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    smtp = SmtpServer()
    smtp.start()
    env = {"REDIS_URL": redis.url, "CA_SMTP_PORT": str(smtp.port)}
    stamp = time.monotonic_ns()
    base = live_processes.start_api(workers=2, name=f"api-redis-{stamp}", **env)
    api = Api(live_processes.tokens, base_url=base)
    worker = live_processes.start(f"worker-redis-{stamp}", ["worker"], **env)
    scheduler = live_processes.start(f"scheduler-redis-{stamp}", ["scheduler"], **env)
    api.org("acme")
    api.user("bob", "acme")
    bob = api.issue("bob", make_csr()[1]).json
    insert_certificates(
        ctx, "acme", [{"login_id": "alice", "not_after": ctx.clock.now() + timedelta(days=10), "email": "a@example.com"}]
    )
    wait_for(lambda: serials_on_published_crl(api, tmp_path) == set(), timeout=60)  # the scheduler's first CRL: empty
    worker.wait_for_log("worker listening on", timeout=60)

    os.killpg(worker.proc.pid, signal.SIGSTOP)  # the worker takes nothing while the jobs are in Redis
    assert (
        api.post(f"/v1/certificates/{bob['serial']}/revocation", role="operator", json={"reason": "key_compromise"}).status == 200
    )
    out = run_cli("notices", "scan", env=test_env.env(**env)).stdout
    assert "1 emails queued" in out
    conn = Redis.from_url(redis.url)
    assert Queue("crl", connection=conn).count >= 1 and Queue("mail", connection=conn).count == 1  # Redis had them
    redis.stop()
    redis.start()  # same port, empty: the queued jobs are gone
    assert Queue("crl", connection=conn).count == 0 and Queue("mail", connection=conn).count == 0
    os.killpg(worker.proc.pid, signal.SIGCONT)

    wait_for(lambda: [m["To"] for m in smtp.messages] == ["a@example.com"], timeout=60)
    wait_for(lambda: int(bob["serial"], 16) in serials_on_published_crl(api, tmp_path), timeout=60)
    time.sleep(12)  # past the re-dispatch grace period: a second email would be on its way by now
    assert [m["To"] for m in smtp.messages] == ["a@example.com"]  # once
    assert worker.alive() and scheduler.alive()  # they reconnected by themselves
    for proc in (worker, scheduler, live_processes.processes[f"api-redis-{stamp}"]):
        assert proc.stop() == 0
    smtp.stop()
    redis.stop()
