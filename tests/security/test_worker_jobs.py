"""Finding 3 (issue 13): whoever can write to Redis must not run code in the worker, which holds
the CA passphrase. A real `ca-service worker` runs the project's own jobs and nothing else."""

from __future__ import annotations

import os
import pickle
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job

from ca_service.services.background import jobs
from tests.support.live import free_port
from tests.support.workers import empty_queues


class _Gadget:
    """A pickle that runs a shell command when it is loaded (the classic pickle gadget)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (self.command,))


def _wait_finished(job: Job, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while job.get_status(refresh=True) not in ("finished", "failed"):
        assert time.monotonic() < deadline, f"job {job.id} still {job.get_status()}"
        time.sleep(0.2)


def test_a_foreign_function_enqueued_in_redis_never_runs_in_the_worker(ctx, test_env, live_processes, tmp_path):
    empty_queues(test_env.redis_url)
    conn = Redis.from_url(test_env.redis_url)
    queue = Queue("default", connection=conn)
    by_name, by_pickle, by_callback = tmp_path / "by-name", tmp_path / "by-pickle", tmp_path / "by-callback"
    # 1. the review's attack: any importable function, by name
    foreign = queue.enqueue("subprocess.getoutput", f"id > {by_name}")
    # 2. a pickle gadget in the job's data: runs while the job is being loaded, before any name check
    gadget = queue.enqueue("workers.jobs.sweep_job")
    conn.hset(gadget.key, "data", zlib.compress(pickle.dumps((_Gadget(f"touch {by_pickle}"), None, (), {}))))
    # 3. an allowed job with a foreign success callback (imported and called after the job)
    callback = queue.enqueue("workers.jobs.sweep_job")
    conn.hset(callback.key, "success_callback_name", "tests.security.test_worker_jobs.never")
    # the project's jobs as the scheduler enqueues them (function objects: RQ names them where they
    # are defined, ca_service.services.background.jobs), then one by name, last: when it
    # has finished, the worker has been through the queue
    own = [queue.enqueue(jobs.sweep_job), queue.enqueue(jobs.audit_checkpoint_job)]
    # queued before services/ became packages (issue 22): the old name still runs, for one release
    own.append(queue.enqueue("ca_service.services.tasks.sweep_job"))  # regroup:keep
    # queued by the scheduler before the job functions were gathered in one module: the same
    own.append(queue.enqueue("workers.audit_jobs.audit_checkpoint_job"))
    # but the old module's other names are as foreign as any other
    old_module_other = queue.enqueue("ca_service.services.tasks.audit", "x")  # regroup:keep
    legit = queue.enqueue("workers.jobs.sweep_job")
    worker = live_processes.start("worker-allowlist", ["worker"], ATTACK_MARKER_DIR=str(tmp_path))
    try:
        _wait_finished(legit)
        assert legit.get_status(refresh=True) == "finished", worker.log()[-3000:]
        for job in own:
            assert job.get_status(refresh=True) == "finished", (job.func_name, worker.log()[-3000:])
        for job in (foreign, gadget, old_module_other):
            assert job.get_status(refresh=True) == "failed", job.id
        time.sleep(1)
        assert not by_name.exists(), "the worker ran subprocess.getoutput for whoever wrote to Redis"
        assert not by_pickle.exists(), "the worker unpickled a gadget from Redis"
        assert not by_callback.exists()
        assert worker.alive(), worker.log()[-3000:]
        log = worker.log()
        assert "subprocess.getoutput" in log and "refused" in log, log[-3000:]
    finally:
        worker.stop()
        conn.close()


def never(*_args: object) -> None:
    """Named as a job's callback in Redis: must never be imported and called by the worker."""
    (Path(os.environ["ATTACK_MARKER_DIR"]) / "by-callback").write_text("called")


def _redis_server(tmp: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--save", "", "--appendonly", "no", "--dir", str(tmp), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc


def _wait_ping(client: Redis) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _run_job_through(test_env, redis_url: str) -> None:
    """Enqueue a project job through the service (as the API does) and run it with a real worker."""
    from tests.support.cli import run_cli

    conn = Redis.from_url(redis_url)
    job = Queue("default", connection=conn).enqueue("workers.jobs.sweep_job")
    out = run_cli("worker", "--burst", env=test_env.env(REDIS_URL=redis_url))
    assert out.returncode == 0, out.stdout + out.stderr
    assert job.get_status(refresh=True) == "finished", out.stdout[-2000:] + out.stderr[-2000:]
    assert "s3cret-redis" not in out.stdout + out.stderr  # the password is never logged


def test_redis_with_a_password(ctx, test_env, tmp_path):
    port = free_port()
    server = _redis_server(tmp_path, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret-redis")
    try:
        _wait_ping(Redis.from_url(f"redis://:s3cret-redis@127.0.0.1:{port}/0"))
        with pytest.raises(Exception, match=r"(?i)auth"):
            Redis.from_url(f"redis://127.0.0.1:{port}/0").set("x", "1")
        _run_job_through(test_env, f"redis://:s3cret-redis@127.0.0.1:{port}/0")
    finally:
        server.terminate()
        server.wait(10)


def test_redis_over_tls_with_a_password(ctx, test_env, tmp_path):
    crt, key = tmp_path / "redis.crt", tmp_path / "redis.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = _redis_server(
        tmp_path, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret-redis",
        "--tls-cert-file", str(crt), "--tls-key-file", str(key), "--tls-ca-cert-file", str(crt), "--tls-auth-clients", "no",
    )  # fmt: skip
    url = f"rediss://:s3cret-redis@127.0.0.1:{port}/0?ssl_ca_certs={crt}"
    try:
        time.sleep(0.3)
        if server.poll() is not None:
            pytest.fail("redis-server has no TLS support (Debian's redis-server does)")
        _wait_ping(Redis.from_url(url))
        _run_job_through(test_env, url)
    finally:
        server.terminate()
        server.wait(10)
