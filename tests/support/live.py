"""Real processes under test: gunicorn via `ca-service serve`, and (later) rq workers."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.api import Api
from tests.support.environment import TestEnvironment


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ca_service_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "ca_service.cli.main", *args]


class ManagedProcess:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Until the process has logged `text` (e.g. it is past start-up and handles SIGTERM)."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


class LiveProcesses:
    def __init__(self, env: TestEnvironment, tokens: dict[str, str]) -> None:
        self.env = env
        self.tokens = tokens
        self.processes: dict[str, ManagedProcess] = {}
        self.base_url: str | None = None

    def start(self, name: str, args: list[str], **extra_env: str) -> ManagedProcess:
        log = self.env.data_dir.parent / f"{name}.log"
        proc = ManagedProcess(name, ca_service_argv(*args), self.env.env(**extra_env), log)
        self.processes[name] = proc
        return proc

    def start_api(self, workers: int = 3, name: str = "api", **extra_env: str) -> str:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        proc = self.start(
            name,
            ["serve", "--bind", f"127.0.0.1:{port}"],
            CA_GUNICORN_WORKERS=str(workers),
            CA_PUBLIC_BASE_URL=base_url,
            **extra_env,
        )
        deadline = time.monotonic() + 90  # a loaded CI machine boots gunicorn's workers slowly
        while True:
            try:
                if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                    return base_url
            except requests.RequestException:
                pass
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{proc.log()[-3000:]}")
            time.sleep(0.1)

    def api(self) -> Api:
        if self.base_url is None or not self.processes["api"].alive():
            self.base_url = self.start_api()
        return Api(self.tokens, base_url=self.base_url)

    def stop_all(self) -> None:
        for proc in self.processes.values():
            proc.stop()
