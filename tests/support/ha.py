"""High-availability test rigs (issue 18): nginx as a load balancer in front of several
`ca-service serve` nodes, and a PostgreSQL primary with a streaming standby on this machine."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from tests.support.api import Api
from tests.support.background import wait_for
from tests.support.live import free_port
from tests.support.pki import openssl

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


def _as_postgres(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL server binary as the postgres user (initdb and postgres refuse root)."""
    prefix = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
    proc = subprocess.run([*prefix, *argv], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {proc.stdout}{proc.stderr}")
    return proc


class PgPair:
    """A primary and a streaming standby (pg_basebackup -R) on two free ports, with synchronous
    replication: a commit returns only once the standby has flushed it."""

    def __init__(self) -> None:
        bindir = pg_bindir()
        assert bindir is not None, "PostgreSQL server binaries are needed for this test"
        self.bin = bindir
        # not under pytest's tmp_path: the postgres user cannot enter root's 0700 directories
        self.directory = Path(tempfile.mkdtemp(prefix="ca-pg-pair-"))
        self.ports = (free_port(), free_port())
        self.dirs = (self.directory / "primary", self.directory / "standby")

    def url(self, database: str) -> str:
        # SQLAlchemy's form of libpq's multi-host string: one `host=` per server, tried in order;
        # target_session_attrs=read-write skips a standby (in recovery) and a server that is down.
        hosts = "&".join(f"host=127.0.0.1:{p}" for p in self.ports)
        return f"postgresql+psycopg://postgres@/{database}?{hosts}&target_session_attrs=read-write&connect_timeout=2"

    def _ctl(self, which: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        log = self.directory / f"pg-{which}.log"
        return _as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.dirs[which]), "-l", str(log), "-w", "-t", "60", *args, check=check
        )

    def psql(self, which: int, sql: str) -> str:
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.ports[which]), "-U", "postgres", "-At", "-c", sql],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()

    def start(self, database: str) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        primary, standby = self.dirs
        _as_postgres(str(self.bin / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "trust", "--no-sync")
        settings = {
            "port": self.ports[0], "listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{self.directory}'",
            "fsync": "off", "full_page_writes": "off", "max_connections": 60, "shared_buffers": "'32MB'",
            "wal_keep_size": "'64MB'",
        }  # fmt: skip
        with open(primary / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        self._ctl(0, "start")
        _as_postgres(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports[0]), "-U", "postgres", "-D", str(standby),
            "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        with open(standby / "postgresql.auto.conf", "a") as conf:
            conf.write(f"port = {self.ports[1]}\n")
            # the standby names itself in primary_conninfo (written by -R): the primary waits for it
            conf.write(f"primary_conninfo = 'host=127.0.0.1 port={self.ports[0]} user=postgres application_name=standby1'\n")
        self._ctl(1, "start")
        self.psql(0, "ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        self.psql(0, "SELECT pg_reload_conf()")
        wait_for(lambda: self.psql(0, "SELECT sync_state FROM pg_stat_replication") == "sync", timeout=30)
        self.psql(0, f'CREATE DATABASE "{database}"')

    def crash_primary(self) -> None:
        self._ctl(0, "stop", "-m", "immediate")

    def promote_standby(self) -> None:
        self._ctl(1, "promote")

    def stop(self) -> None:
        for which in (1, 0):
            self._ctl(which, "stop", "-m", "immediate", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def serials_on_published_crl(api: Api, directory: Path) -> set[int]:
    """Serials on the issuing CRL the node serves (/crl/issuing.crl), as openssl reads it."""
    r = api.get("/crl/issuing.crl", role=None)
    if r.status != 200:
        return set()
    (directory / "issuing.crl").write_bytes(r.content)
    text = openssl("crl", "-inform", "DER", "-in", str(directory / "issuing.crl"), "-noout", "-text", check=True).stdout
    return {int(line.split(":", 1)[1].strip(), 16) for line in text.splitlines() if "Serial Number:" in line}
