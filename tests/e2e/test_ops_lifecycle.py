"""Graceful life: readiness follows the schema version; SIGTERM stops the API, worker and scheduler
within 30 s with status 0 under load, and no work is lost."""

from __future__ import annotations

import signal
import threading
import time

import requests
from cryptography import x509
from sqlalchemy import func, select, text

from ca_service.services.crl import publication as crl_publication
from ca_service.store.migrate import head_revision
from ca_service.store.models import Certificate, OutboxEntry
from tests.support.cli import run_cli
from tests.support.pki import make_csr


def test_readyz_fails_while_the_schema_is_behind(live, ctx):
    assert live.get("/readyz", role=None).status == 200
    head = head_revision(ctx.engine)
    with ctx.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        r = live.get("/readyz", role=None)
        assert r.status == 503 and r.json["checks"]["schema"].startswith("behind")
    finally:
        with ctx.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert live.get("/readyz", role=None).status == 200


def test_sigterm_under_load_stops_everything_cleanly_and_loses_nothing(live_processes, ctx, test_env):
    base = live_processes.start_api(workers=2, name="api-term")
    worker = live_processes.start("worker-term", ["worker"])
    scheduler = live_processes.start("scheduler-term", ["scheduler"])
    # up and running first: a process still importing (slow on a busy CI machine) dies of the
    # signal before it can handle it, which is harmless but not what this test is about
    worker.wait_for_log("worker listening on")
    scheduler.wait_for_log("scheduler running")
    api = type(live_processes.api())(live_processes.tokens, base_url=base)
    api.org("acme")
    api.user("boss", "acme", role="master")
    stop = threading.Event()
    revoked: list[str] = []

    def load() -> None:
        i = 0
        while not stop.is_set():
            login = f"u{i}"
            i += 1
            try:
                api.user(login, "acme")
                issued = api.issue(login, make_csr()[1])
                r = api.post(
                    f"/v1/certificates/{issued.json['serial']}/revocation",
                    json={"reason": "cessation_of_operation", "acting_login_id": "boss"},
                )
                if r.status == 200:
                    revoked.append(issued.json["serial"])
            except (requests.RequestException, AssertionError, KeyError):
                return  # the API is going away

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(3)
    processes = {"api": live_processes.processes["api-term"], "worker": worker, "scheduler": scheduler}
    started = time.monotonic()
    for proc in processes.values():
        proc.proc.send_signal(signal.SIGTERM)
    codes = {name: proc.proc.wait(35) for name, proc in processes.items()}
    elapsed = time.monotonic() - started
    stop.set()
    thread.join(10)
    assert codes == {"api": 0, "worker": 0, "scheduler": 0}, {n: p.log()[-6000:] for n, p in processes.items() if codes[n]}
    assert elapsed < 30 and revoked
    # nothing lost: every revocation committed is recorded, and its CRL publication request is
    # either done or still pending in the outbox / the queue, done by the next worker run
    with ctx.sessions() as s:
        assert s.scalar(
            select(func.count())
            .select_from(Certificate)
            .where(Certificate.serial.in_(revoked), Certificate.revoked_at.is_not(None))
        ) == len(revoked)
        pending = s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.dispatched_at.is_(None)))
    assert pending is not None
    run_cli("worker", "--burst", env=test_env.env())
    latest = crl_publication.latest_crl(ctx, "issuing")
    crl = x509.load_der_x509_crl(latest.der)
    on_crl = {format(r.serial_number, "x") for r in crl}
    assert set(revoked) <= on_crl
