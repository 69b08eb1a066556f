"""High-availability test rigs (issue 18): nginx as a load balancer in front of several
`ca-service serve` nodes, and a PostgreSQL primary with a streaming standby on this machine."""

from __future__ import annotations

import glob
import shutil
import subprocess
import time
from pathlib import Path

import requests

from tests.support.background import wait_for
from tests.support.live import free_port

NGINX_CONF = """
user root root;
worker_processes 1;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream ca_service {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://ca_service;
            proxy_set_header Host $http_host;
            proxy_next_upstream error timeout;
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx, round-robin over `backends` (base URLs), on a port of its own."""

    def __init__(self, directory: Path, backends: list[str]) -> None:
        self.directory = directory
        self.port = free_port()
        self.backends = backends
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.directory.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {b.removeprefix('http://')};" for b in self.backends)
        conf = self.directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.directory, servers=servers, port=self.port))
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.directory), "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.DEVNULL
        )
        wait_for(self._up, timeout=15)

    def _up(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def pg_bindir() -> Path | None:
    """Debian's versioned PostgreSQL server binaries (initdb, pg_ctl, postgres)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def wait_until(check: object, timeout: float) -> float:
    """Seconds until `check()` is true (for timings in reports)."""
    start = time.monotonic()
    wait_for(check, timeout=timeout)  # type: ignore[arg-type]
    return time.monotonic() - start
