"""Shared benchmark plumbing: a fresh PostgreSQL database, an initialised CA, bulk loading with
COPY, the real service (gunicorn with the production config), wrk as the separate load process,
and one printed table per benchmark. Benchmarks print figures; they never assert on speed."""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import bulk

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSPHRASE = "bench-passphrase-not-secret"


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import cryptography
    from cryptography.hazmat.backends.openssl.backend import backend

    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"cryptography {cryptography.__version__}, {backend.openssl_version_text()}"
    )


def certificate_columns(tag: str, login_prefix: str, *, current: bool) -> dict[str, str]:
    """SQL for the columns every generated certificate row needs (bench/bulk.py), per row number
    `i`: distinct pseudo-random serials and key hashes (md5 of the tag and i), login ID
    `login_prefix` + i in the organisation `bench`, a placeholder DER, and the issuer from the
    `issuer_id` parameter. Callers add the dates (and revocation columns)."""
    return {
        "serial": f"ltrim(md5('{tag}s' || i) || left(md5('{tag}t' || i), 8), '0')",
        "issuer_id": "%(issuer_id)s",
        "login_id": f"'{login_prefix}' || i",
        "org_id": "'bench'",
        "current_login_id": f"'{login_prefix}' || i" if current else "NULL",
        "spki_sha256": f"md5('{tag}k' || i) || md5('{tag}l' || i)",
        "fingerprint_sha256": f"md5('{tag}f' || i) || md5('{tag}g' || i)",
        "key_description": "'EC P-256'",
        "der": "'\\x3000'::bytea",
    }


def peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def free_port() -> int:
    """A TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(argv: Sequence[str], env: Mapping[str, str], log_path: Path, ready_url: str) -> subprocess.Popen[bytes]:
    """Start a server in its own process group, logging to `log_path`, and wait (90 s at most)
    until `ready_url` answers 200; if it exits or never answers, fail with the end of its log."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if requests.get(ready_url, timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_processes([proc])
    tail = log_path.read_text(errors="replace")[-2000:]  # the run's directory goes at exit
    raise RuntimeError(f"{argv[0]} for {ready_url} did not become ready (exit code {proc.poll()}); its log ends:\n{tail}")


def stop_processes(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each one's process group, SIGKILL after 30 s."""
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@dataclass
class BenchEnv:
    """A fresh database + data dir, with the environment every process of the run shares."""

    name: str
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ca-bench-")))
    database_url: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = make_url(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG)
        dbname = f"ca_bench_{self.name}_{os.getpid()}"  # two people benchmarking at once never share one
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
        admin.dispose()
        self.database_url = base.set(database=dbname).render_as_string(hide_password=False)
        os.environ.update(self.env())

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            CA_DATA_DIR=str(self.workdir / "data"),
            CA_KEY_PASSPHRASE=PASSPHRASE,
            CA_ROOT_KEY_PASSPHRASE="bench-root-passphrase-not-secret",
            CA_LOG_LEVEL="WARNING",
            # every benchmark issues thousands of certificates in one organisation ('bench'): the
            # per-organisation issuance brake (issue 26) would answer 429; its count and lock stay measured
            CA_FRONTEND_ISSUANCES_PER_ORG_HOUR="1000000",
        )
        env.pop("CA_CLOCK_OFFSET_FILE", None)
        env.update(extra)
        return env

    def init_ca(self) -> None:
        subprocess.run([sys.executable, "-m", "ca_service.cli.main", "init"], env=self.env(), check=True, capture_output=True)

    def token(self, role: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ca_service.cli.main",
                "clients",
                "create",
                "--name",
                f"bench-{role}",
                "--role",
                role,
                "--json",
            ],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return str(json.loads(out.stdout)["token"])

    def generate(self, table: str, columns: Mapping[str, str], count: int, **params: object) -> None:
        """Bulk-load `count` generated rows into `table` (bench/bulk.py: server-side generation,
        indexes rebuilt after the load), with progress on stderr for the large sizes."""
        with bulk.connect(self.database_url) as conn, bulk.indexes_deferred(conn, table):
            bulk.generate(conn, table, columns, count, params)

    def settle(self, *tables: str) -> None:
        """VACUUM ANALYZE the freshly loaded tables and CHECKPOINT, so that neither a vacuum nor the
        write-back of the load's dirty pages runs during the measurement."""
        engine = create_engine(self.database_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for table in tables:
                conn.execute(text(f"VACUUM ANALYZE {table}"))
            conn.execute(text("CHECKPOINT"))
        engine.dispose()

    def issuing_ca_id(self) -> int:
        return int(str(self.scalar("SELECT id FROM certificate_authorities WHERE kind='issuing' AND active")))

    def load_users(self, prefix: str, count: int, *, with_org: bool = True, email_every: int = 0) -> None:
        """The organisation `bench` (certificate method) and users prefix0..prefixN."""
        if with_org:
            self.sql(
                "INSERT INTO organizations (org_id, name, login_method, created_at, updated_at) "
                "VALUES ('bench', 'Bench', 'certificate', now(), now())"
            )
        email = f"CASE WHEN mod(i, {email_every}) <> 0 THEN %(prefix)s || i || '@example.com' END" if email_every else "NULL"
        columns = {"login_id": "%(prefix)s || i", "org_id": "'bench'", "role": "'general'", "email": email,
                   "display_name": "NULL", "created_at": "now()", "updated_at": "now()"}  # fmt: skip
        self.generate("users", columns, count, prefix=prefix)

    def sql(self, statement: str) -> None:
        engine = create_engine(self.database_url)
        with engine.begin() as conn:
            conn.execute(text(statement))
        engine.dispose()

    def scalar(self, query: str) -> object:
        engine = create_engine(self.database_url)
        with engine.connect() as conn:
            value = conn.execute(text(query)).scalar()
        engine.dispose()
        return value

    def start_api(self, extra_env: Mapping[str, str] | None = None, *, port: int | None = None) -> str:
        """`ca-service serve` = gunicorn with config/gunicorn.conf.py (the production config), on a
        free port unless one is given (a fixed port could be another run's server, measured by mistake)."""
        port = port or free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "ca_service.cli.main", "serve", "--bind", f"127.0.0.1:{port}"]
        env = self.env(CA_PUBLIC_BASE_URL=base, **(extra_env or {}))
        proc = start_server(argv, env, self.workdir / "api.log", base + "/readyz")
        self.processes.append(proc)
        return base

    def stop(self) -> None:
        stop_processes(self.processes)
        shutil.rmtree(self.workdir, ignore_errors=True)
        if os.environ.get("BENCH_KEEP_DATABASE") != "1":  # each run's database is its own: drop it
            url = make_url(self.database_url)
            admin = create_engine(
                url.set(database=make_url(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG).database),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            admin.dispose()


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    non_2xx: int
    total: int
    cpu_ms_per_request: float  # CPU of the whole machine (service, PostgreSQL, Redis, wrk) per request
    worker_peak_mb: float  # the largest peak RSS (VmHWM) of one server process, if the server was given
    service_cpu_ms: float = float("nan")  # CPU of gunicorn's processes + the bench database's backends per request

    def cells(self) -> list[object]:
        """The table cells under WRK_HEADERS."""
        return [
            round(self.requests_per_second, 1), self.p50_ms, self.p95_ms, self.p99_ms, self.non_2xx,
            f"{self.cpu_ms_per_request:.2f}", f"{self.service_cpu_ms:.3f}", round(self.worker_peak_mb),
        ]  # fmt: skip


WRK_HEADERS = [
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "non-2xx",
    "CPU ms/request",
    "service CPU ms/request",
    "worker peak MB",
]  # after the rate's own header


# Appended to every wrk script: wrk's own text output has no p95.
PERCENTILES_LUA = """
function done(summary, latency, requests)
  for _, p in ipairs({50, 95, 99}) do
    io.write(string.format("PERCENTILE %d %d\\n", p, latency:percentile(p)))
  end
end
"""


def busy_cpu_seconds() -> float:
    """CPU time spent by every process on the machine so far (/proc/stat, all cores, not idle)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _first(pattern: str, text: str, default: str) -> str:
    match = re.search(pattern, text)
    return match.group(1) if match else default


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def service_cpu_seconds(server_pid: int) -> float:
    """CPU used so far by gunicorn (arbiter and workers) and by the PostgreSQL backends serving the
    bench's own database (`postgres: <user> ca_bench_...` process titles): the service's cost of a
    request, unlike the machine's, does not move with what other users of a shared machine run."""
    total = _cpu_seconds(server_pid) + sum(_cpu_seconds(c) for c in _children(server_pid))
    database = os.environ.get("DATABASE_URL", "")
    name = make_url(database).database if database else None
    if name:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    title = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"postgres:") and f" {name} ".encode() in title:
                    total += _cpu_seconds(int(entry.name))
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def peak_rss_mb_of_tree(pid: int) -> float:
    """The largest peak resident set (VmHWM) among `pid` and its children (gunicorn's workers)."""
    pids = [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    peaks = []
    for one in pids:
        try:
            status = Path(f"/proc/{one}/status").read_text()
        except OSError:
            continue
        peaks.append(int(_first(r"VmHWM:\s+(\d+) kB", status, "0")) / 1024)
    return max(peaks, default=float("nan"))


def run_wrk(
    url: str, script: Path, *, seconds: int, connections: int, threads: int = 2, server: subprocess.Popen[bytes] | None = None
) -> WrkResult:
    """wrk as the separate load process; percentiles from its Lua `done` hook (microseconds)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    full_script = script.with_name(script.stem + ".percentiles.lua")
    full_script.write_text(script.read_text() + PERCENTILES_LUA)
    argv = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "-s", str(full_script), url]
    busy_before = busy_cpu_seconds()
    service_before = service_cpu_seconds(server.pid) if server is not None else float("nan")
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    busy = busy_cpu_seconds() - busy_before
    rps = float(_first(r"Requests/sec:\s+([\d.]+)", out, "0"))
    pct = {int(p): int(us) / 1000 for p, us in re.findall(r"^PERCENTILE (\d+) (\d+)$", out, re.M)}
    non2xx = int(_first(r"Non-2xx or 3xx responses: (\d+)", out, "0"))
    total = int(_first(r"(\d+) requests in", out, "0"))
    cpu_ms = 1000 * busy / total if total else float("nan")
    peak = peak_rss_mb_of_tree(server.pid) if server is not None else float("nan")
    service = service_cpu_seconds(server.pid) - service_before if server is not None else float("nan")
    nan = float("nan")
    service_ms = 1000 * service / total if total else nan
    return WrkResult(rps, pct.get(50, nan), pct.get(95, nan), pct.get(99, nan), non2xx, total, cpu_ms, peak, service_ms)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[f"{c:,.1f}" if isinstance(c, float) else f"{c:,}" if isinstance(c, int) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    print(f"\nmachine: {machine()}")
