"""Finding 13 (issue 26): with every sync gunicorn worker waiting on a database lock, /healthz
waited 8 s behind them. Liveness is answered by gunicorn's arbiter on CA_HEALTH_BIND (a thread
of its own, config/health_listener.py), which no business request can occupy: it answers while
every worker is blocked."""

from __future__ import annotations

import threading
import time

import requests

from ca_service.store import users
from ca_service.store.db import transaction
from tests.support.live import free_port

WORKERS = 2


def _hold_the_users_lock(ctx, seconds: float, held: threading.Event) -> None:
    """A stuck transaction: alice's row locked (PostgreSQL), the write lock taken (SQLite)."""
    with transaction(ctx.sessions) as session:
        users.get_user(session, "alice", for_update=True)
        held.set()
        time.sleep(seconds)


def test_liveness_answers_while_every_worker_waits_on_a_lock(ctx, api, tokens, live_processes):
    api.org("acme")
    api.user("alice", "acme")
    health = f"127.0.0.1:{free_port()}"
    base = live_processes.start_api(workers=WORKERS, name="api-liveness", CA_HEALTH_BIND=health, CA_DB_LOCK_TIMEOUT_MS="8000")
    try:
        held = threading.Event()
        holder = threading.Thread(target=_hold_the_users_lock, args=(ctx, 7.0, held))
        holder.start()
        assert held.wait(10)
        body = {"org_id": "acme", "role": "general", "email": "a2@bank.example"}
        auth = {"Authorization": f"Bearer {tokens['operator']}"}
        put = lambda: requests.put(base + "/v1/users/alice", json=body, headers=auth, timeout=30)  # noqa: E731
        blocked = [threading.Thread(target=put) for _ in range(WORKERS)]
        for t in blocked:
            t.start()
        time.sleep(1.0)  # every worker is inside a request, waiting on the lock
        started = time.monotonic()
        r = requests.get(f"http://{health}/healthz", timeout=3)
        answered = time.monotonic() - started
        assert r.status_code == 200 and r.json()["status"] == "ok", r.text
        print(f"/healthz on CA_HEALTH_BIND with {WORKERS} workers blocked: {answered * 1000:.0f} ms")
        try:  # the same question on the API port queues behind the blocked workers (the finding)
            requests.get(base + "/healthz", timeout=1)
            queued = False
        except requests.Timeout:
            queued = True
        holder.join()
        for t in blocked:
            t.join()
        assert queued, "the API port answered while every worker was blocked: the test held no worker"
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
        assert requests.get(f"http://{health}/readyz", timeout=3).status_code == 404  # liveness only
    finally:
        live_processes.processes["api-liveness"].stop()
