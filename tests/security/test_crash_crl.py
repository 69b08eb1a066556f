"""Issue 26 finding 8: a crash of the API, the worker and the scheduler while a revocation's CRL
publication runs must not keep the revocation off the CRL: within 60 s of the restart it is on
the published CRL (checked with `openssl crl`).

To catch the publication mid-flight without racing it, the test holds the issuing CA's row lock
(the lock a publication takes first) after the revocation committed, starts the worker, waits for
RQ to mark the job started, then SIGKILLs all three process groups and lets the lock go. The
dead worker's execution stays in RQ's StartedJobRegistry (its heartbeat TTL is ~90 s)."""

from __future__ import annotations

import os
import signal
import time

from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry

from ca_service.outbox.relay import waiting_crl_job
from ca_service.store import authorities as cas
from tests.support.api import Api
from tests.support.background import wait_for
from tests.support.pki import make_csr, openssl
from tests.support.workers import issuing_ca_id


def _serials_on_published_crl(path: os.PathLike[str]) -> set[str]:
    if not os.path.exists(path):
        return set()
    out = openssl("crl", "-inform", "DER", "-in", str(path), "-noout", "-text", check=True).stdout
    return {format(int(line.split(":", 1)[1].strip(), 16), "x") for line in out.splitlines() if "Serial Number:" in line}


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        todo += children
    return found


def _kill(proc) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL the process and every descendant, as a lost host or container would: RQ's work
    horse runs in a process group of its own, so killpg of the worker's group would spare it."""
    for pid in [proc.proc.pid, *_descendants(proc.proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.proc.wait(10)
    proc.stop()  # closes its log


def test_revocation_is_on_the_crl_within_60_s_of_a_restart_after_sigkill(ctx, live_processes, test_env):
    redis = ctx.redis()
    redis.delete("ca-service:scheduler:lease")  # an earlier test's scheduler: not this test's subject
    base = live_processes.start_api(workers=1, name="api-crash")
    api = Api(live_processes.tokens, base_url=base)
    scheduler = live_processes.start("scheduler-crash", ["scheduler"])
    scheduler.wait_for_log("holds the lease")
    first = live_processes.start("worker-first", ["worker"])  # runs what the scheduler enqueued on taking the lease
    crl_queue = Queue("crl", connection=redis)
    running = StartedJobRegistry("crl", connection=redis)
    wait_for(lambda: crl_queue.count == 0 and running.count == 0, timeout=30, interval=0.1)
    first.stop()  # SIGTERM: a clean stop, so the revocation's publication waits in the queue
    api.org("acme")
    api.user("victim", "acme")
    serial = api.issue("victim", make_csr()[1]).json["serial"]
    assert api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"}).status == 200

    def queued_publication() -> Job | None:
        # what the relay calls waiting: `queued` and in the queue (the first worker, stopped an
        # instant after it took the start-up publication off the queue, may have dropped that one)
        job_id = waiting_crl_job(redis)
        return None if job_id is None else Job.fetch(job_id, connection=redis)

    job = wait_for(queued_publication, timeout=10, interval=0.05)
    session = ctx.sessions()
    session.begin()
    try:
        cas.lock_ca(session, issuing_ca_id(ctx))  # the publication will wait for this lock
        worker = live_processes.start("worker-crash", ["worker"])
        # start-up (two interpreter starts: the worker re-execs for its metrics) is slow on a loaded
        # CI machine: wait for it apart from the dequeue, and say what was seen if either stalls
        worker.wait_for_log("worker listening", timeout=90)
        try:
            wait_for(lambda: job.get_status(refresh=True) == "started", timeout=30, interval=0.05)
        except AssertionError:
            seen = f"job {job.id}: {job.get_status(refresh=True)}; crl: {crl_queue.job_ids}; started: {running.get_job_ids()}"
            raise AssertionError(f"the publication never started ({seen}); worker log:\n{worker.log()[-3000:]}") from None
        for proc in (live_processes.processes["api-crash"], worker, scheduler):
            _kill(proc)
    finally:
        session.rollback()
        session.close()
        for name in ("api-crash", "worker-first", "worker-crash", "scheduler-crash"):  # a failure above
            if name in live_processes.processes:  # must not leave them running into later tests
                live_processes.processes[name].stop()
    crl_path = ctx.settings.public_dir / "issuing.crl"
    assert format(int(serial, 16), "x") not in _serials_on_published_crl(crl_path)

    restarted = time.monotonic()
    try:
        live_processes.start_api(workers=1, name="api-again")
        live_processes.start("worker-again", ["worker"])
        live_processes.start("scheduler-again", ["scheduler"])
        left = 60 - (time.monotonic() - restarted)
        wait_for(lambda: format(int(serial, 16), "x") in _serials_on_published_crl(crl_path), timeout=left, interval=1)
    finally:  # the session's later tests must not meet this test's background processes
        for name in ("api-again", "worker-again", "scheduler-again"):
            if name in live_processes.processes:
                live_processes.processes[name].stop()
