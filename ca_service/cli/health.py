"""`ca-service healthcheck`: the container HEALTHCHECK of every role, kept cheap to start.

One image runs every role and a Dockerfile has one HEALTHCHECK, so the long-running commands
(`init`, `serve`, `worker`, `scheduler`) record what they are in `$CA_HEALTH_FILE` (the image
sets it to a path inside the container's own filesystem, never the shared data volume), and
`ca-service healthcheck` reads it and checks that role:

- serve: GET /healthz answers 200 (liveness), on CA_HEALTH_BIND when set (the arbiter's own
  listener, never queued behind busy workers: config/health_listener.py), else on the API port;
- worker: RQ's heartbeat of *this* worker (`last_heartbeat` of `rq:worker:<name>`) is recent.
  The worker refreshes it every `CA_WORKER_HEARTBEAT_SECONDS` while idle and while a job runs,
  so a worker whose main loop is stuck (deadlock, stopped, lost in a call) goes stale, even
  though Redis itself answers;
- scheduler: RQ's CronScheduler heartbeat of this scheduler (its score in `rq:cron_schedulers`)
  is recent;
- init (one-shot): the current step (migrating, creating the CAs, ...) has not lasted longer
  than INIT_STEP_DEADLINE_SECONDS, i.e. init is not stuck on a lock or an unreachable peer.

This module imports nothing heavy (the full CLI takes seconds to import on a loaded machine,
longer than a healthcheck's timeout): `ca_service.cli.entry` calls it before loading the CLI.
Exit status 0 healthy, 1 unhealthy or misconfigured (Docker reserves 2), with one line on
stdout: Docker keeps it in the container's health log.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEALTH_FILE_ENV = "CA_HEALTH_FILE"
ROLES = ("init", "serve", "worker", "scheduler")
INIT_STEP_DEADLINE_SECONDS = 600  # no init step (migration, key generation) takes minutes
SCHEDULER_STALE_SECONDS = 90  # RQ's CronScheduler ticks at least every 60 s (here: every 10 s)
DEFAULT_WORKER_HEARTBEAT_SECONDS = 30


def worker_stale_after(heartbeat_seconds: int) -> int:
    """A worker heartbeating every N seconds is hung when the last beat is older than this."""
    return 2 * heartbeat_seconds + 15


def record(role: str, **fields: Any) -> None:
    """Say what this container runs (atomically; a missing or unwritable file only loses the
    healthcheck, never the service)."""
    path = os.environ.get(HEALTH_FILE_ENV)
    if not path:
        return
    state = {"role": role, "pid": os.getpid(), "since": time.time(), **fields}
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".health-")
        with os.fdopen(fd, "w") as out:
            json.dump(state, out)
        os.replace(tmp, target)
    except OSError as exc:
        print(f"ca-service: warning: cannot write {HEALTH_FILE_ENV}={path}: {exc}", file=sys.stderr)


def _check_serve(state: dict[str, Any]) -> str | None:
    import http.client

    bind = str(state.get("bind", "127.0.0.1:8000"))
    host, _, port = bind.rpartition(":")
    if not port.isdigit():
        return f"serve: cannot check a server bound to {bind!r} (HOST:PORT only)"
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 - a wildcard bind is reached on loopback
        host = "127.0.0.1"
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=3)
    try:
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
    except OSError as exc:
        return f"serve: /healthz on {host}:{port} unreachable ({type(exc).__name__})"
    finally:
        conn.close()
    return None if status == 200 else f"serve: /healthz answered {status}"


def _redis() -> Any:
    import redis

    url = os.environ.get("REDIS_URL")
    if not url:
        raise _Misconfigured("REDIS_URL is not set")
    return redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)


def _check_worker(state: dict[str, Any]) -> str | None:
    import redis

    name = state.get("name")
    stale_after = worker_stale_after(int(state.get("heartbeat_seconds", DEFAULT_WORKER_HEARTBEAT_SECONDS)))
    try:
        beat, death = _redis().hmget(f"rq:worker:{name}", ["last_heartbeat", "death"])
    except redis.RedisError as exc:
        return f"worker {name}: Redis unavailable ({type(exc).__name__})"
    if death is not None:
        return f"worker {name}: stopped at {death.decode()}"
    if beat is None:
        return f"worker {name}: not registered in Redis (dead, or never started)"
    from datetime import datetime

    age = time.time() - datetime.fromisoformat(beat.decode().replace("Z", "+00:00")).timestamp()
    if age > stale_after:
        return f"worker {name}: last heartbeat {age:.0f} s ago (> {stale_after} s): hung"
    return None


def _check_scheduler(state: dict[str, Any]) -> str | None:
    import redis

    name = state.get("name")
    try:
        score = _redis().zscore("rq:cron_schedulers", str(name))
    except redis.RedisError as exc:
        return f"scheduler {name}: Redis unavailable ({type(exc).__name__})"
    if score is None:
        from workers.leader import LEASE_KEY

        try:  # a standby has no heartbeat: healthy while another scheduler holds the lease
            if _redis().exists(LEASE_KEY):
                return None
        except redis.RedisError as exc:
            return f"scheduler {name}: Redis unavailable ({type(exc).__name__})"
        return f"scheduler {name}: not registered in Redis (stopped, or never started)"
    age = time.time() - float(score)
    if age > SCHEDULER_STALE_SECONDS:
        return f"scheduler {name}: last heartbeat {age:.0f} s ago (> {SCHEDULER_STALE_SECONDS} s): hung"
    return None


def _check_init(state: dict[str, Any]) -> str | None:
    step = state.get("step", "starting")
    age = time.time() - float(state.get("since", 0))
    if step != "done" and age > INIT_STEP_DEADLINE_SECONDS:
        return f"init: step {step!r} running for {age:.0f} s (> {INIT_STEP_DEADLINE_SECONDS} s): stuck"
    return None


class _Misconfigured(Exception):
    pass


CHECKS = {"init": _check_init, "serve": _check_serve, "worker": _check_worker, "scheduler": _check_scheduler}


def run(role: str | None) -> int:
    """The check; prints one line and returns the exit status."""
    path = os.environ.get(HEALTH_FILE_ENV)
    try:
        if not path:
            raise _Misconfigured(f"{HEALTH_FILE_ENV} is not set (the image sets it; elsewhere set it for the process too)")
        if role is not None and role not in ROLES:
            raise _Misconfigured(f"unknown role {role!r}: one of {', '.join(ROLES)}")
        try:
            state = json.loads(Path(path).read_text())
        except FileNotFoundError:
            print(f"unhealthy: no role has started yet ({path} is absent)")
            return 1
        except (OSError, ValueError) as exc:
            raise _Misconfigured(f"cannot read {path}: {exc}") from None
        if role is not None and state.get("role") != role:
            raise _Misconfigured(f"this container runs {state.get('role')!r}, not {role!r}")
        problem = CHECKS[state["role"]](state)
    except _Misconfigured as exc:
        print(f"unhealthy: misconfigured: {exc}")
        return 1
    if problem:
        print(f"unhealthy: {problem}")
        return 1
    print(f"healthy: {state['role']}")
    return 0
