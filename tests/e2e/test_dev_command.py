"""Issue 17: `ca-service dev` as a new user runs it (a real subprocess in a scratch folder, SQLite,
its own embedded Redis and mail sink, a free port), the CLI beside it, and the README walk-through
run as written against it, so the README cannot drift from the code again."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ca_service.cli.embedded_redis import redis_server_binary
from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[2]
BANNER = "ca-service is running at"
# the test session exports its own settings into os.environ: `dev` must see none of them
SCRUBBED = ("DATABASE_URL", "REDIS_URL", "CA_DATA_DIR", "CA_KEY_PASSPHRASE", "CA_KEY_PASSPHRASE_FILE", "CA_PUBLIC_BASE_URL",
            "CA_CLOCK_OFFSET_FILE", "CA_SMTP_HOST", "CA_SMTP_PORT", "CA_BIND", "PROMETHEUS_MULTIPROC_DIR",
            "CA_ORGANIZATION_NAME", "CA_GUNICORN_WORKERS")  # fmt: skip

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("dev-command"),  # one xdist worker: the module's `dev` is started once
    pytest.mark.skipif(redis_server_binary() is None, reason="needs redis-server for dev's embedded Redis"),
    # `dev` always runs on SQLite and its own Redis, whatever the suite uses: CI's run without
    # DATABASE_URL covers it; the PostgreSQL run would repeat it word for word (~7 min on CI)
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="dev is tested in the run without DATABASE_URL"),
]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # ca-service, as after `make install`
    env.update(extra)
    return env


class Dev:
    """One `ca-service dev` in `folder`, its output collected in a file."""

    def __init__(self, folder: Path, bind: str | None, name: str = "dev", **extra_env: str) -> None:
        self.folder = folder
        self.out_path = folder / f"{name}.out"
        self._out = open(self.out_path, "wb")
        argv = [sys.executable, "-m", "ca_service.cli.main", "dev", *(["--bind", bind] if bind else [])]
        self.proc = subprocess.Popen(
            argv, cwd=folder, env=clean_env(**extra_env), stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dev never printed {text!r} (status {self.proc.poll()}):\n{self.output()[-4000:]}")
            time.sleep(0.1)

    def wait(self, timeout: float = 90) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                return self.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()
        return self.proc.returncode


def shell(folder: Path, script: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """bash in `folder`, as a user's second shell: nothing of the test session's settings."""
    return subprocess.run(
        ["bash", "-c", script], cwd=folder, env=clean_env(TMPDIR=str(folder)), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def running_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dev, int, str]]:
    folder = tmp_path_factory.mktemp("dev-folder")
    port = free_port()
    dev = Dev(folder, f"127.0.0.1:{port}")
    try:
        dev.wait_for(BANNER)
        # the banner is printed only once /readyz answers: right now, it must answer 200
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        banner_ready = ready.status_code
        yield dev, port, str(banner_ready)
    finally:
        status = dev.stop()
    assert status == 0, dev.output()[-4000:]  # Ctrl-C is a clean stop
    assert "stopped" in dev.output()
    assert not (folder / "var" / "dev.env").exists()  # removed: it would point at a dead instance
    assert not (folder / "var" / "dev-banner.txt").exists()


def test_banner_only_once_ready_and_dev_env_for_the_cli(running_dev):
    dev, port, banner_ready = running_dev
    assert banner_ready == "200"
    out = dev.output()
    assert f"{BANNER} http://127.0.0.1:{port}" in out and "operator  token: cas_" in out
    banner = out[out.index(BANNER) :]  # issue 27: the console, a console login and its code in dev
    assert f"http://127.0.0.1:{port}/console/" in banner and "ca-service operators create --username" in banner
    assert "pyotp.TOTP" in banner and (dev.folder / "var" / "dev-banner.txt").read_text().strip() in out
    env_file = dev.folder / "var" / "dev.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    for name in ("CA_DATA_DIR", "DATABASE_URL", "REDIS_URL", "CA_KEY_PASSPHRASE_FILE", "CA_PUBLIC_BASE_URL", "CA_SMTP_PORT"):
        assert re.search(rf"^{name}=", text, re.M), text
    assert f"CA_PUBLIC_BASE_URL=http://127.0.0.1:{port}\n" in text  # the certificate URLs follow the port
    assert "REDIS_URL=unix://" in text
    assert (dev.folder / "var" / "dev-passphrase").read_text() not in text  # the passphrase's file, never the passphrase

    # the CLI beside it, from the same folder, with dev.env loaded as the README says
    published = shell(dev.folder, "set -a; . var/dev.env; set +a; ca-service crl publish")
    assert published.returncode == 0 and "issuing" in published.stdout, published.stdout + published.stderr
    failed = shell(dev.folder, "set -a; . var/dev.env; set +a; ca-service jobs failed")
    assert failed.returncode == 0 and "jobs failed" in failed.stderr, failed.stdout + failed.stderr
    # without it: the Redis error says which URL it tried (and how to fix it), password hidden
    bare = shell(dev.folder, "ca-service jobs failed")
    assert bare.returncode == 1 and "REDIS_URL is not set" in bare.stderr and "var/dev.env" in bare.stderr
    wrong = shell(dev.folder, "REDIS_URL=redis://:hunter2-secret@127.0.0.1:1/0 ca-service jobs failed")
    assert wrong.returncode == 1 and "tried REDIS_URL=redis://:***@127.0.0.1:1/0" in wrong.stderr, wrong.stderr
    assert "hunter2" not in wrong.stderr


def test_a_second_dev_in_the_same_folder_refuses_and_the_first_keeps_working(running_dev):
    dev, port, _ = running_dev
    second = Dev(dev.folder, f"127.0.0.1:{free_port()}", name="second")
    status = second.wait(60)
    lines = [line for line in second.output().splitlines() if line.strip()]
    assert status == 1, second.output()
    assert len(lines) == 1 and "another `ca-service dev`" in lines[0] and str(dev.proc.pid) in lines[0], lines
    # the first still has its Redis socket, its settings file, and works end to end
    assert (dev.folder / "var" / "redis.sock").exists() and (dev.folder / "var" / "dev.env").exists()
    assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    failed = shell(dev.folder, "set -a; . var/dev.env; set +a; ca-service jobs failed")
    assert failed.returncode == 0, failed.stdout + failed.stderr
    assert dev.proc.poll() is None


def test_the_readme_walk_through_runs_as_written(running_dev):
    dev, port, _ = running_dev
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"<!-- walk-through -->\n```sh\n(.*?)```", readme, re.S)
    assert len(blocks) >= 4
    script = "set -eu\n" + "\n".join(blocks)
    # the repository as the user's checkout: var/ is dev's, .venv/bin is where ca-service lives
    (dev.folder / ".venv").mkdir(exist_ok=True)
    (dev.folder / ".venv" / "bin").unlink(missing_ok=True)
    (dev.folder / ".venv" / "bin").symlink_to(Path(sys.executable).parent)
    for run in (1, 2):  # re-runnable: fresh names every time
        result = shell(dev.folder, script)
        out = result.stdout + result.stderr
        assert result.returncode == 0, f"run {run} failed:\n{out[-6000:]}"
        assert "alice.pem: OK" in out  # openssl verify, before the revocations
        assert f"URI:http://127.0.0.1:{port}/crl/" in out  # the certificate URLs follow the port
        assert "certificate revoked" in out and "alice.pem: revoked" in out  # CRL and OCSP after revocation
        assert "renewal-not-open" in out and "ticket-required" in out  # the expected refusals
        assert "revocation_ticket   PAPER-" in out and "revoked_by_client   dev-operator-" in out  # certs show
        assert re.search(r"job [0-9a-f-]{36}: finished", out)
        assert "0 jobs failed" in out
        time.sleep(1.1)  # $RUN is date +%s
    # nothing left in the repository folder: the keys, CSRs and PEMs went to the scratch directory
    assert not list(dev.folder.glob("*.pem")) and not list(dev.folder.glob("*.key"))
    mails = list((dev.folder / "var" / "mail").glob("*.eml"))
    assert any("alice-" in m.read_text(errors="replace") for m in mails)  # the mail sink got the notices


def test_no_routine_noise_in_the_dev_output(running_dev):
    dev, _port, _ = running_dev
    time.sleep(12)  # more than one outbox sweep (every 10 s)
    out = dev.output()
    assert "Listening on" in out  # the worker's own lines still show
    assert "setup plugin" not in out and "Context impl" not in out
    assert "sweep_job" not in out
    # RQ's "Job OK (id)" names no function: one per "Successfully completed <function>" line, so
    # none of the sweep's slipped through
    assert out.count("Successfully completed") >= 2  # at start: the CRL republication, the OCSP rotation
    assert out.count(": Job OK (") == out.count("Successfully completed")


def test_port_taken_exits_1_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        dev = Dev(tmp_path, None, CA_BIND=f"127.0.0.1:{port}")  # as --bind
        status = dev.wait(60)
    lines = [line for line in dev.output().splitlines() if line.strip()]
    assert status == 1, dev.output()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0] and "PORT=" in lines[0], lines


def test_a_part_that_dies_stops_dev_with_status_1(tmp_path):
    dev = Dev(tmp_path, f"127.0.0.1:{free_port()}")
    try:
        dev.wait_for(BANNER)
        (worker,) = [pid for pid in _children(dev.proc.pid) if b"crl,mail,default" in _cmdline(pid)]  # not the webhook worker
        os.kill(worker, signal.SIGKILL)
        status = dev.wait(90)
    finally:
        dev.stop()
    assert status == 1
    assert re.search(r"ca-service: error: worker exited with status -9", dev.output()), dev.output()[-3000:]


def test_make_run_takes_a_port():
    out = subprocess.run(["make", "-n", "run", "PORT=8001"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "ca-service dev --bind 127.0.0.1:8001" in out


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
