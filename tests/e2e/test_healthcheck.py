"""`ca-service healthcheck` (the image's one HEALTHCHECK) against the real roles: gunicorn, an RQ
worker, the CronScheduler and init, each recording its role in $CA_HEALTH_FILE. A stopped
(SIGSTOP: hung) worker goes unhealthy although Redis answers; a stopped role is not healthy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.live import LiveProcesses, ManagedProcess, ca_service_argv

# the console script, as the image's HEALTHCHECK runs it (it answers without loading the CLI)
CA_SERVICE = str(Path(sys.executable).parent / "ca-service")


def _run(env: dict[str, str], role: tuple[str, ...]) -> tuple[int, str]:
    proc = subprocess.run([CA_SERVICE, "healthcheck", *role], capture_output=True, text=True, env=env, timeout=30, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def check(test_env, health_file: Path, *role: str) -> tuple[int, str]:
    return _run(test_env.env(CA_HEALTH_FILE=str(health_file)), role)


def wait_until(test_env, health_file: Path, status: int, *role: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        code, out = check(test_env, health_file, *role)
        if code == status:
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"healthcheck never exited {status}; last: {code} {out}")
        time.sleep(0.5)


def start(test_env, tmp_path: Path, name: str, args: list[str], **env: str) -> ManagedProcess:
    return ManagedProcess(name, ca_service_argv(*args), test_env.env(**env), tmp_path / f"{name}.log")


def test_a_hung_worker_goes_unhealthy_although_redis_answers(test_env, tmp_path):
    health = tmp_path / "worker.health"
    worker = start(test_env, tmp_path, "worker", ["worker"], CA_HEALTH_FILE=str(health), CA_WORKER_HEARTBEAT_SECONDS="2")
    try:
        worker.wait_for_log("worker listening")
        assert wait_until(test_env, health, 0, "worker").strip() == "healthy: worker"
        name = json.loads(health.read_text())["name"]
        worker.proc.send_signal(signal.SIGSTOP)  # hung: alive, connected, doing nothing
        out = wait_until(test_env, health, 1, "worker", timeout=90)
        assert f"worker {name}: last heartbeat" in out and "hung" in out, out
        worker.proc.send_signal(signal.SIGCONT)
        wait_until(test_env, health, 0, "worker", timeout=60)  # beats again: healthy again
    finally:
        worker.proc.send_signal(signal.SIGCONT)
        assert worker.stop(signal.SIGTERM, timeout=30) == 0, worker.log()[-2000:]
    code, out = check(test_env, health, "worker")
    assert code == 1 and f"worker {name}: stopped at" in out, out  # a stopped worker is not healthy


def test_scheduler_healthcheck_follows_its_own_heartbeat(test_env, tmp_path):
    health = tmp_path / "scheduler.health"
    scheduler = start(test_env, tmp_path, "scheduler", ["scheduler"], CA_HEALTH_FILE=str(health))
    try:
        scheduler.wait_for_log("scheduler running")
        assert wait_until(test_env, health, 0).strip() == "healthy: scheduler"
        assert json.loads(health.read_text())["name"].startswith("ca-service-scheduler-")
        code, out = check(test_env, health, "worker")  # compose names the role: a mismatch is an error
        assert code == 1 and "this container runs 'scheduler', not 'worker'" in out, out
    finally:
        assert scheduler.stop(signal.SIGTERM, timeout=30) == 0, scheduler.log()[-2000:]
    code, out = check(test_env, health, "scheduler")
    assert code == 1 and "not registered" in out, out


def test_serve_healthcheck_asks_its_own_port(test_env, ctx, tmp_path):  # ctx: an initialised database
    health = tmp_path / "serve.health"
    live = LiveProcesses(test_env, {})
    try:
        live.start_api(workers=1, CA_HEALTH_FILE=str(health))
        assert check(test_env, health) == (0, "healthy: serve\n")
    finally:
        live.stop_all()
    code, out = check(test_env, health, "serve")
    assert code == 1 and "/healthz on 127.0.0.1" in out and "unreachable" in out, out


def test_init_records_its_steps_and_a_stuck_step_is_unhealthy(test_env, tmp_path):
    health = tmp_path / "init.health"
    run_cli("init", env=test_env.env(CA_HEALTH_FILE=str(health)))  # the CAs exist: a no-op run
    assert json.loads(health.read_text())["step"] == "done"
    assert check(test_env, health, "init") == (0, "healthy: init\n")
    # the file is the interface between init and the check: a step that began 11 minutes ago
    health.write_text(json.dumps({"role": "init", "step": "migrating the database", "since": time.time() - 660}))
    code, out = check(test_env, health, "init")
    assert code == 1 and "init: step 'migrating the database' running for 66" in out and "stuck" in out, out


def test_healthcheck_without_a_role_or_a_file_is_unhealthy(test_env, tmp_path):
    assert check(test_env, tmp_path / "absent") == (1, f"unhealthy: no role has started yet ({tmp_path / 'absent'} is absent)\n")
    env = test_env.env()
    env.pop("CA_HEALTH_FILE", None)
    code, out = _run(env, ())
    assert code == 1 and "CA_HEALTH_FILE is not set" in out, out


@pytest.mark.parametrize("value", ["0", "301", "x"])
def test_a_bad_heartbeat_setting_is_one_line(test_env, value):
    out = run_cli("worker", "--burst", env=test_env.env(CA_WORKER_HEARTBEAT_SECONDS=value), check=False)
    assert out.returncode == 2 and out.stderr.strip().startswith("ca-service: error: CA_WORKER_HEARTBEAT_SECONDS="), out
    assert "Traceback" not in out.stderr
