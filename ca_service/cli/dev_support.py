"""The parts of `ca-service dev` that make it safe to start: a lock on the data directory, a port
check, a readiness wait, a mail sink (emails land in files) and `dev.env` for the CLI."""

from __future__ import annotations

import fcntl
import os
import shlex
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class DevError(Exception):
    """`dev` cannot start or keep running; the message is one line for the user."""


class DataDirLock:
    """An exclusive flock on `<data dir>/.lock`, held for the life of `dev`: a second `dev` on the
    same directory would reuse, then delete, the first one's Redis socket and files. The kernel
    drops the lock when the process dies, so a crash never leaves a stale lock behind."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # not inherited by children (O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DevError(
                f"another `ca-service dev` (pid {holder}) is running with the data directory {self.path.parent}; "
                "stop it first, or give this one its own: CA_DATA_DIR=/some/other/dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def split_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise DevError(f"--bind/CA_BIND must be HOST:PORT, not {bind!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def check_port_free(bind: str) -> None:
    """Fail with one line now instead of gunicorn retrying `Connection in use` five times."""
    host, port = split_bind(bind)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn: only a listener blocks
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DevError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another port: "
                f"make run PORT={port + 1}  (or: ca-service dev --bind {host}:{port + 1})"
            ) from None


def probe_url(bind: str) -> str:
    host, port = split_bind(bind)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a wildcard listener is probed on loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def wait_ready(
    base_url: str,
    children: Sequence[tuple[str, subprocess.Popen[bytes]]],
    stopping: Callable[[], bool],
    timeout: float = 120.0,
) -> bool:
    """Until GET /readyz answers 200 (True), or `stopping()` (False). A child that exits first, or
    no answer within `timeout`, is a DevError."""
    deadline = time.monotonic() + timeout
    while not stopping():
        for name, proc in children:
            if proc.poll() is not None:
                raise DevError(f"{name} exited with status {proc.returncode} while starting (its output is above)")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as resp:  # noqa: S310 - our own http URL
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise DevError(f"the API at {base_url} was not ready after {timeout:.0f} s (its output is above)")
        time.sleep(0.25)
    return False


class MailSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in a thread) that writes every message it receives
    to `<directory>/<UTC time>-<n>.eml`: the expiry notices of `dev` can be read, never sent."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.controller: Any = None
        self.port = 0

    def start(self) -> int:
        from aiosmtpd.controller import Controller

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        sink = self
        counter = iter(range(1, 1 << 62))
        lock = threading.Lock()

        class Handler:
            async def handle_DATA(self, _server: object, _session: object, envelope: Any) -> str:
                with lock:
                    n = next(counter)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                content = envelope.original_content or envelope.content
                (sink.directory / f"{stamp}-{n}.eml").write_bytes(content if isinstance(content, bytes) else content.encode())
                return "250 OK"

        with socket.socket() as probe:  # a free port, chosen now
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self.port

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


ENV_FILE_NAMES = (
    "CA_DATA_DIR",
    "DATABASE_URL",
    "REDIS_URL",
    "CA_KEY_PASSPHRASE_FILE",
    "CA_CONSOLE_SECRET_KEY_FILE",
    "CA_PUBLIC_BASE_URL",
    "CA_SMTP_HOST",
    "CA_SMTP_PORT",
)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """`dev.env`: the settings of this `dev`, for the CLI in another shell (mode 600; never the
    passphrase itself, only its file)."""
    lines = [
        f"# written by `ca-service dev` (pid {os.getpid()}); removed when it stops. In another shell:",
        "#   set -a; . var/dev.env; set +a",
    ]
    lines += [f"{name}={shlex.quote(env[name])}" for name in ENV_FILE_NAMES if env.get(name)]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
