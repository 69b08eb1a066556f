"""Issue 17 item 3: a worker or scheduler waiting out a Redis outage stops at once on SIGTERM,
with status 0 (not SIGKILL after compose's 30 s grace, exit 137). Two ways to be waiting: Redis
was never there (a closed port), or it went away while the process was running (RQ had installed
its own SIGTERM handler by then, a warm-shutdown request nobody read once work() had failed)."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from ca_service.cli.embedded_redis import EmbeddedRedis
from tests.support.live import ManagedProcess, ca_service_argv, free_port

STARTED = {"worker": "Listening on", "scheduler": "scheduler running"}


@pytest.mark.parametrize("redis", ["never-up", "went-away", "goes-with-sigterm"])
@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_sigterm_while_waiting_for_redis_stops_at_once_with_status_0(command, redis, test_env, tmp_path):
    own_redis = EmbeddedRedis(tmp_path / "redis") if redis != "never-up" else None
    url = own_redis.start() if own_redis else f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = ManagedProcess(command, ca_service_argv(command), test_env.env(REDIS_URL=url), tmp_path / f"{command}.log")
    try:
        if own_redis:
            proc.wait_for_log(STARTED[command])
            time.sleep(1)
        started = time.monotonic()
        if redis == "goes-with-sigterm":  # compose stopping everything: Redis dies as the one signal arrives
            own_redis.process.send_signal(signal.SIGKILL)
            proc.proc.send_signal(signal.SIGTERM)
        elif own_redis:
            own_redis.stop()
        deadline = time.monotonic() + 60
        # where it waits: our own loop around RQ, or (a worker that was running) RQ's reconnect loop
        # inside work(), where RQ's SIGTERM handler, which reads the worker's state from Redis,
        # used to fail and the signal was swallowed
        went_away_worker = (command, redis) == ("worker", "went-away")
        waiting = "could not connect to Redis instance" if went_away_worker else "retrying in 2 s"
        # twice: RQ's work()/start() has been entered and has failed at least once
        while redis != "goes-with-sigterm" and proc.log().count(waiting) < 2:
            assert proc.alive(), proc.log()[-3000:]
            assert time.monotonic() < deadline, f"{command} never waited for Redis:\n{proc.log()[-3000:]}"
            time.sleep(0.1)
        if redis != "goes-with-sigterm":
            started = time.monotonic()
            proc.proc.send_signal(signal.SIGTERM)
        try:
            status = proc.proc.wait(15)
        except subprocess.TimeoutExpired:
            status = None
        elapsed = time.monotonic() - started
    finally:
        proc.stop(signal.SIGKILL, timeout=5)
        if own_redis:
            own_redis.stop()
    assert status == 0, f"status {status}:\n{proc.log()[-3000:]}"
    assert elapsed < 5, f"{command} took {elapsed:.1f} s to stop"
