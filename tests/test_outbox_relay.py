"""The one road to RQ (ca_service/outbox/relay.py): routes installed explicitly and a kind without
one reported, never skipped; the operator's forced CRL publication through the outbox and its
coalescing; one retry policy; webhook deliveries' own backoff through the same helper; one
context for every job."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
import time

import pytest
from cryptography import x509
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from ca_service import queueing
from ca_service.api.app import create_app
from ca_service.context import build_context
from ca_service.outbox import records, recovery, relay, routes
from ca_service.queueing import fetch_job
from ca_service.services.background import failed_jobs, jobs
from ca_service.services.events import delivery
from ca_service.store.db import transaction
from ca_service.store.models import Crl, OutboxEntry
from tests.conftest import SYSTEM
from tests.support.api import Api
from tests.support.live import free_port
from tests.support.pki import make_csr
from tests.support.workers import empty_queues, queued_count, run_worker_burst


@pytest.fixture
def queues(test_env):
    empty_queues(test_env.redis_url)
    yield
    empty_queues(test_env.redis_url)


def _entries(ctx) -> list[OutboxEntry]:
    with ctx.sessions() as s:
        return list(s.scalars(select(OutboxEntry).order_by(OutboxEntry.id)))


def _revoke_a_new_certificate(api, login_id: str) -> str:
    """Issue `login_id` a certificate and have the operator revoke it (which queues a CRL
    publication); returns its serial."""
    serial = api.issue(login_id, make_csr()[1]).json["serial"]
    assert api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "unspecified"}).status == 200
    return serial


def test_a_kind_without_a_route_stays_pending_logged_at_error_and_blocks_nothing(ctx, queues, caplog):
    with transaction(ctx.sessions) as session:
        records.add(session, ctx, None, "no.such.kind", x=1)
        records.add(session, ctx, None, records.NOTICE_EMAIL, notice_id=424242)
    with caplog.at_level(logging.ERROR, logger="ca_service.outbox"):
        assert relay.dispatch_pending(ctx) == 1  # the email; the unknown kind is not skipped silently
    unknown, email = _entries(ctx)
    assert unknown.dispatched_at is None and unknown.attempts == 1 and "no route" in (unknown.last_error or "")
    assert email.dispatched_at is not None
    assert any(r.levelno == logging.ERROR and f"entry {unknown.id}" in r.getMessage() for r in caplog.records)
    relay.dispatch_pending(ctx)  # every relay reports it again, counting the attempts
    assert _entries(ctx)[0].attempts == 2


def test_a_process_that_never_registered_the_routes_relays_nothing(ctx, test_env, queues, monkeypatch, caplog):
    monkeypatch.setattr(routes, "_installed", {})
    with transaction(ctx.sessions) as session:
        records.add(session, ctx, None, records.CRL_PUBLISH, reason="revocation", serial="01")
    with caplog.at_level(logging.ERROR, logger="ca_service.outbox"):
        assert relay.dispatch_pending(ctx) == 0
    [entry] = _entries(ctx)
    assert entry.dispatched_at is None and "register_routes" in (entry.last_error or "")
    assert queued_count(test_env.redis_url, "crl") == 0
    jobs.register_routes()  # what the API app, the CLI, the scheduler and every job do at start-up
    assert relay.dispatch_pending(ctx) == 1
    assert queued_count(test_env.redis_url, "crl") == 1


def test_every_job_context_installs_the_routes(ctx, monkeypatch):
    monkeypatch.setattr(routes, "_installed", {})
    worker_ctx = jobs.job_context()
    assert worker_ctx is jobs.job_context()  # one per process (renewed in a forked work horse)
    assert routes.route(records.CRL_PUBLISH).job is jobs.publish_crl_job


def test_installing_the_routes_never_shows_a_thread_an_empty_table():
    """Every job installs the routes; a thread relaying at that moment must find them. Clearing
    then filling the table let a reader in between see none (thousands of misses a second with
    a fine thread switch interval)."""
    jobs.register_routes()
    table = dict(routes._installed)
    kind = next(iter(table))
    misses = 0
    stop = threading.Event()

    def relay_thread() -> None:
        nonlocal misses
        while not stop.is_set():
            try:
                routes.route(kind)
            except routes.NoRoute:
                misses += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    reader = threading.Thread(target=relay_thread)
    reader.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            routes.install(table)
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert misses == 0


def test_forced_publication_requests_go_through_the_outbox_and_coalesce(api, ctx, test_env, queues):
    first = api.post("/v1/crl/publications", role="operator")
    second = api.post("/v1/crl/publications", role="operator")
    assert first.status == second.status == 202 and first.json["status"] == "queued"
    # one forced publication waiting in the queue covers both requests: both follow that job
    assert first.json["job_id"] == second.json["job_id"]
    assert queued_count(test_env.redis_url, "crl") == 1
    entries = _entries(ctx)
    assert [e.kind for e in entries] == [records.CRL_PUBLISH] * 2 and all(e.dispatched_at for e in entries)
    api.org("acme")
    api.user("a", "acme")
    _revoke_a_new_certificate(api, "a")
    assert queued_count(test_env.redis_url, "crl") == 1  # the waiting forced job covers the revocation too
    run_worker_burst(test_env)
    job = api.get(f"/v1/jobs/{first.json['job_id']}", role="operator").json
    assert job["status"] == "finished" and job["result"]["published"] is True and job["result"]["entries"] == 1
    with ctx.sessions() as s:
        assert s.scalars(select(Crl.crl_number).where(Crl.entries == 1)).all() == [job["result"]["crl_number"]]


def test_a_waiting_plain_publication_does_not_cover_a_forced_request(api, ctx, test_env, queues):
    api.org("acme")
    api.user("a", "acme")
    _revoke_a_new_certificate(api, "a")
    conn = Redis.from_url(test_env.redis_url)
    plain = relay.waiting_crl_job(conn)
    assert plain is not None
    # a plain job publishes only when a revocation is not on the CRL yet: an operator asking to
    # publish now gets a forced job of its own
    forced = api.post("/v1/crl/publications", role="operator").json["job_id"]
    assert forced != plain and relay.waiting_crl_job(conn, forced=True) == forced
    assert fetch_job(forced, conn).kwargs["force"] is True
    assert queued_count(test_env.redis_url, "crl") == 2


def test_a_publication_a_stopped_worker_popped_but_never_started_does_not_swallow_later_revocations(api, ctx, test_env, queues):
    """RQ's worker takes a job id off the queue (BLPOP) and marks it started only afterwards; a
    worker stopped in between (SIGTERM while idle is a warm shutdown that raises at once) drops
    the job, whose status stays `queued` with no queue holding it. Coalescing on the status alone
    joined every later revocation to that lost job for PENDING_CRL_TTL (an hour), and the sweep
    thought the publication in hand (seen in CI on 2026-12-07: tests/security/test_crash_crl.py)."""
    api.org("acme")
    api.user("a", "acme")
    api.user("b", "acme")
    first = _revoke_a_new_certificate(api, "a")
    conn = Redis.from_url(test_env.redis_url)
    lost = relay.waiting_crl_job(conn)
    assert lost is not None
    # what the stopped worker did: BLPOP took the id off the queue, and nothing more
    assert conn.lpop(Queue("crl", connection=conn).key) == lost.encode()
    assert fetch_job(lost, conn).get_status(refresh=True) == "queued"
    assert relay.waiting_crl_job(conn) is None
    assert not recovery.crl_publication_in_hand(conn, worker_heartbeat_seconds=30)  # the sweep re-dispatches

    second = _revoke_a_new_certificate(api, "b")
    covering = relay.waiting_crl_job(conn)
    assert covering not in (None, lost) and queued_count(test_env.redis_url, "crl") == 1
    run_worker_burst(test_env)
    crl = x509.load_der_x509_crl((ctx.settings.public_dir / "issuing.crl").read_bytes())
    assert {int(first, 16), int(second, 16)} <= {entry.serial_number for entry in crl}


def test_a_publication_request_with_redis_down_is_503_and_records_nothing(ctx, tokens):
    down = build_context(dataclasses.replace(ctx.settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"), pool_size=1)
    try:
        api = Api(tokens, flask_client=create_app(down).test_client())
        r = api.post("/v1/crl/publications", role="operator")
        assert r.status == 503 and r.code == "queue-unavailable"
    finally:
        down.engine.dispose()
    assert _entries(ctx) == []


def test_a_notice_email_job_a_stopped_worker_dropped_is_lost_to_the_sweep(ctx, test_env, queues):
    """A notice email's job has a stable id, and the sweep took "its hash exists" for "in hand": a
    job a stopped worker took off the queue but never started stays `queued` in no queue, and the
    40-day notice's email was never sent. Queued but in no queue is lost now."""
    conn = Redis.from_url(test_env.redis_url)
    waiting, dropped, finished = (relay.enqueue(ctx, records.NOTICE_EMAIL, {"notice_id": n}) for n in (1, 2, 3))
    assert conn.lrem(Queue("mail", connection=conn).key, 1, dropped.id) == 1  # what the stopped worker's BLPOP did
    conn.lrem(Queue("mail", connection=conn).key, 1, finished.id)
    finished.set_status("finished")
    assert [fetch_job(j.id, conn).get_status(refresh=True) for j in (waiting, dropped, finished)] == ["queued"] * 2 + ["finished"]
    assert recovery.lost_email_jobs(conn, [1, 2, 3, 4]) == [2, 4]  # 4: no job at all


def test_one_retry_policy_for_every_retried_job(ctx, queues):
    job = relay.enqueue(ctx, records.NOTICE_EMAIL, {"notice_id": 7})  # as the lost-work recovery does
    intervals = list(ctx.settings.mail_retry_intervals)
    assert job.id == relay.notice_email_job_id(7)
    assert job.retries_left == len(intervals) and job.retry_intervals == intervals
    assert relay.enqueue(ctx, records.CRL_PUBLISH, {}).retries_left is None  # not a retried route


def test_a_webhook_retry_is_scheduled_through_the_relay_with_its_own_backoff(ctx, test_env, queues):
    delivery.kick(ctx, "stream-1", "https://receiver.example/hook", delay=20)
    conn = Redis.from_url(test_env.redis_url)
    [job_id] = ScheduledJobRegistry("webhooks", connection=conn).get_job_ids()
    job = fetch_job(job_id, conn)
    assert job.func_name == "ca_service.services.background.jobs.deliver_webhooks_job"
    assert job.kwargs == {"stream": "stream-1", "url": "https://receiver.example/hook"}
    assert job.retries_left is None  # the backoff is the delay (DESIGN §4d), not RQ's retries


def test_a_failed_job_under_a_renamed_function_is_listed_and_requeued(ctx, test_env, queues):
    # queued by the scheduler before the periodic jobs moved to services/background/jobs.py
    queue = queueing.queue("default", Redis.from_url(test_env.redis_url))
    job = queue.enqueue("workers.audit_jobs.audit_checkpoint_job")
    queue.remove(job)
    queue.failed_job_registry.add(job, exc_string="Traceback ...\nRuntimeError: boom")
    [listed] = failed_jobs.list_failed(ctx, "default")
    assert listed.known and listed.function == "workers.audit_jobs.audit_checkpoint_job"
    assert [j.job_id for j in failed_jobs.requeue(ctx, SYSTEM, [job.id])] == [job.id]
    assert job.id in queue.get_job_ids()
