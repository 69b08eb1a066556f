"""Lifecycle events with real processes (issue 25): gunicorn records them, a real `ca-service
worker --queues webhooks` delivers them to an http.server receiver that verifies every signature
with `standardwebhooks`; per-login-ID order under concurrency (two workers), a receiver down then back, and a
process SIGKILLed right after its commit (the scheduler's sweep relays what it left behind)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from ca_service.api.app import create_app
from ca_service.services import events
from ca_service.services.events import delivery
from ca_service.store.db import transaction
from ca_service.store.models import OutboxEntry, WebhookDelivery
from tests.e2e.test_workers import _on_crl
from tests.support.api import Api
from tests.support.background import wait_for
from tests.support.pki import make_csr
from tests.support.webhook_receiver import Receiver
from tests.support.workers import empty_queues
from tests.test_webhooks import SECRET, hooked

LOGINS = 10
CYCLES = 5  # issue then revoke, per login ID: 50 revocations in all
FAST_RETRIES = {"CA_WEBHOOK_RETRY_FIRST_SECONDS": "1", "CA_WEBHOOK_RETRY_MAX_SECONDS": "1"}  # production: tests/test_webhooks.py


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def hook_env(receiver: Receiver) -> dict[str, str]:
    return {"CA_WEBHOOK_URLS": receiver.url, "CA_WEBHOOK_SECRET": SECRET, "CA_WEBHOOK_TIMEOUT_SECONDS": "3", **FAST_RETRIES}


def first_seen(receiver: Receiver) -> list[dict[str, Any]]:
    """Each event once (at least once: a receiver dedupes on id), in arrival order."""
    seen: set[str] = set()
    out = []
    with receiver.lock:
        for e in receiver.accepted:
            if e["id"] not in seen:
                seen.add(e["id"])
                out.append(e)
    return out


def test_50_concurrent_revocations_across_10_login_ids_arrive_in_order_per_login_id(
    ctx, tokens, live_processes, test_env, receiver
) -> None:
    empty_queues(test_env.redis_url)
    env = hook_env(receiver)
    base_url = live_processes.start_api(workers=3, name="api-webhooks", **env)
    api = Api(tokens, base_url=base_url)
    api.org("acme")
    for i in range(LOGINS):
        api.user(f"u{i}", "acme")
    receiver.down()  # the receiver is down when the burst starts: connection refused
    stamp = time.monotonic_ns()  # two webhook workers: jobs of one login ID race, the lease keeps the order
    workers = [live_processes.start(f"webhook-worker-{n}-{stamp}", ["worker", "--queues", "webhooks"], **env) for n in (1, 2)]
    try:

        def cycles(i: int) -> list[str]:
            serials = []
            for _ in range(CYCLES):
                issued = api.issue(f"u{i}", make_csr()[1])
                assert issued.status == 201, issued
                serial = issued.json["serial"]
                r = api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"})
                assert r.status == 200, r
                serials.append(serial)
            return serials

        started = time.monotonic()
        with ThreadPoolExecutor(LOGINS) as pool:
            serials = list(pool.map(cycles, range(LOGINS)))
        burst = time.monotonic() - started
        time.sleep(2)
        receiver.up()  # back, on the same port: the scheduled retries (1 s in this test) find it
        receiver.behaviour = lambda n: 500 if n <= 10 else 200  # and it answers 500 ten times first
        receiver.wait_for(lambda: len(first_seen(receiver)) >= 2 * LOGINS * CYCLES, timeout=90)
        delivered_after = time.monotonic() - started
    finally:
        for worker in workers:
            worker.stop()
        live_processes.processes["api-webhooks"].stop()
    assert receiver.bad_signatures == 0
    assert all("deliver_webhooks_job" in w.log() for w in workers)  # both took delivery jobs
    events = first_seen(receiver)
    for i in range(LOGINS):
        mine = [(e["type"], e["data"]["serial"]) for e in events if e["data"]["login_id"] == f"u{i}"]
        expected = [(t, s) for s in serials[i] for t in ("certificate.issued", "certificate.revoked")]
        assert mine == expected, (i, mine)
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status != "delivered")) == 0
    print(f"burst {burst:.1f} s; all {len(events)} events delivered {delivered_after:.1f} s after the burst began")


KILL_AFTER_COMMIT = """
import os, signal, sys
from ca_service.context import Actor, build_context
from ca_service.services.audit import post_commit
from ca_service.services.certificates import revocation
from config.settings import load_settings

# the process dies right after the revocation's commit, before it relays anything to Redis
post_commit.after_commit = lambda ctx, **tail: os.kill(os.getpid(), signal.SIGKILL)
revocation.revoke(build_context(load_settings()), Actor("kill-test", "operator"), sys.argv[1], reason="key_compromise")
"""


def test_sigkill_right_after_commit_is_still_delivered(ctx, tokens, live_processes, test_env, receiver) -> None:
    empty_queues(test_env.redis_url)
    env = hook_env(receiver)
    base_url = live_processes.start_api(workers=1, name="api-webhooks-kill", **env)
    api = Api(tokens, base_url=base_url)
    api.org("acme")
    api.user("alice", "acme")
    issued = api.issue("alice", make_csr()[1])
    assert issued.status == 201, issued
    live_processes.processes["api-webhooks-kill"].stop()
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_COMMIT, issued.json["serial"]], env=test_env.env(**env), capture_output=True, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    with ctx.sessions() as s:  # committed, not relayed
        left = s.scalars(select(OutboxEntry.kind).where(OutboxEntry.dispatched_at.is_(None)))
        assert sorted(left) == ["crl.publish", "webhook.deliver"]
    worker = live_processes.start(f"webhook-worker-k-{time.monotonic_ns()}", ["worker", "--queues", "webhooks,default"], **env)
    scheduler = live_processes.start(f"scheduler-k-{time.monotonic_ns()}", ["scheduler"], **env)
    try:
        receiver.wait_for(lambda: [e["type"] for e in first_seen(receiver)] == ["certificate.issued", "certificate.revoked"], 60)
    finally:
        scheduler.stop()
        worker.stop()
    revoked = first_seen(receiver)[1]
    assert revoked["data"] == {
        "login_id": "alice", "org_id": "acme", "serial": issued.json["serial"], "reason": "key_compromise",
        "revoked_at": revoked["data"]["revoked_at"],
    }  # fmt: skip


ATTEMPT = """
import sys
from ca_service.context import process_context
from ca_service.services.events import delivery
delivery.attempt_next(process_context(), sys.argv[1], sys.argv[2])
"""


def test_a_worker_killed_mid_delivery_leaves_a_lease_that_expires_and_the_event_is_sent_again(
    ctx, clock, test_env, receiver
) -> None:
    receiver.behaviour = lambda n: "hang" if n == 1 else 200
    wctx = hooked(ctx, receiver.url)
    with transaction(wctx.sessions) as session:
        events.record_in(session, wctx, events.CERTIFICATE_REVOKED, login_id="kenji", data={"login_id": "kenji", "serial": "0b"})
    env = test_env.env(**{**hook_env(receiver), "CA_WEBHOOK_TIMEOUT_SECONDS": "30"})
    attempt = subprocess.Popen([sys.executable, "-c", ATTEMPT, "kenji", receiver.url], env=env)
    try:
        receiver.wait_for(lambda: receiver.requests == 1, timeout=60)
    finally:
        attempt.kill()  # SIGKILL mid-delivery: the receiver has the request, the CA no answer
        attempt.wait(10)
    assert delivery.attempt_next(wctx, "kenji", receiver.url).outcome == "busy"  # its lease holds the stream
    assert delivery.redispatch(wctx) == 0
    clock.travel(seconds=30 + delivery.LEASE_MARGIN_SECONDS + delivery.SWEEP_GRACE_SECONDS + 1)
    assert delivery.redispatch(wctx) == 1  # the sweep sees the lease expired and wakes the stream
    delivery.deliver_stream(wctx, "kenji", receiver.url)
    assert receiver.types() == ["certificate.revoked"]
    assert receiver.headers[0]["webhook-id"] == receiver.headers[1]["webhook-id"]  # at least once: dedupe on id
    assert receiver.bodies[0] == receiver.bodies[1]


def test_a_hanging_receiver_stalls_no_crl_publication(ctx, tokens, live_processes, test_env, receiver) -> None:
    """As `ca-service dev` runs them: one worker for crl/mail/default, one for webhooks."""
    empty_queues(test_env.redis_url)
    receiver.behaviour = lambda n: "hang"
    wctx = hooked(ctx, receiver.url)
    api = Api(tokens, flask_client=create_app(wctx).test_client())
    api.org("acme")
    api.user("alice", "acme")
    serial = api.issue("alice", make_csr()[1]).json["serial"]
    env = {**hook_env(receiver), "CA_WEBHOOK_TIMEOUT_SECONDS": "60"}  # stuck for the whole test
    stamp = time.monotonic_ns()
    hooks = live_processes.start(f"webhook-worker-h-{stamp}", ["worker", "--queues", "webhooks"], **env)
    main = live_processes.start(f"worker-h-{stamp}", ["worker", "--queues", "crl,mail,default"], **env)
    try:
        receiver.wait_for(lambda: receiver.requests >= 1, timeout=60)  # the webhook worker is stuck in a request
        started = time.monotonic()
        assert api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"}).status == 200
        wait_for(lambda: serial in _on_crl(ctx), timeout=30)
        on_crl = time.monotonic() - started
        assert receiver.requests == 1  # still in its first request
    finally:
        main.stop()
        receiver.release.set()  # the hung request ends: the webhook worker stops without waiting 60 s
        hooks.stop()
    assert on_crl < 15, on_crl  # settle 1 s + publication; the hung receiver is not in its way
    print(f"revocation on the CRL {on_crl:.1f} s after it, the webhook worker hanging meanwhile")
