"""django-ca 3.2 as a benchmark peer: its own virtualenv (built on first use), its own PostgreSQL
database, a P-256 CA made by its `init_ca`, an API user, bulk-loaded certificates with real DER,
and gunicorn with ca-service's worker settings. Every step that fails stops the run (check=True,
SystemExit): no number is printed for a peer that did not do the work.

The Django project it serves is bench/peers/django_project/django_ca_site (settings, URLs, the peer-side tool)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import make_url

from bench import bulk
from bench.common import DEFAULT_PG, ROOT, free_port, start_server, stop_processes

VENV = ROOT / "var" / "peers" / "django-ca-venv"
SITE = Path(__file__).resolve().parent / "django_project"  # holds the django_ca_site package (not django_ca.py)
REQUIREMENTS = ["django-ca[api,postgres,redis]==3.2.*", f"gunicorn=={importlib.metadata.version('gunicorn')}"]
REASONS = ["key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "unspecified"]
CLAIM_KEY = "ca-service-tests:db:{}"  # the test suite's Redis database claims (tests/support/environment.py)
USER, PASSWORD = "bench", "bench-password-not-secret"


def ensure_venv() -> Path:
    """The peer's virtualenv with django-ca and ca-service's gunicorn version; pip's own progress
    shows on the terminal. Rebuilt when the requirements change or a previous build did not end."""
    marker = VENV / "bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if marker.exists() and marker.read_text() == wanted:
        return VENV / "bin" / "python"
    print(f"building the django-ca virtualenv in {VENV} (first run: ~2 min) ...", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "on"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return VENV / "bin" / "python"


def claim_redis_db(url: str) -> str:
    """Mark the Redis database of `url` as taken, the way the test suite's workers do, so that no
    test run flushes it under the benchmark (and refuse one a live test run holds); then flush it."""
    parsed = make_url(url.replace("redis://", "redis+x://", 1))
    number = int(parsed.database or 0)
    admin = redis.Redis(host=parsed.host or "127.0.0.1", port=parsed.port or 6379, db=0)
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
    if number == 0 or not admin.set(CLAIM_KEY.format(number), token, nx=True, ex=3600):
        raise SystemExit(f"Redis database {number} is in use (by a test run?): choose another in {url}")
    redis.Redis.from_url(url).flushdb()
    return token


def release_redis_db(url: str, token: str) -> None:
    parsed = make_url(url.replace("redis://", "redis+x://", 1))
    admin = redis.Redis(host=parsed.host or "127.0.0.1", port=parsed.port or 6379, db=0)
    redis.Redis.from_url(url).flushdb()
    if admin.get(CLAIM_KEY.format(parsed.database)) == token.encode():
        admin.delete(CLAIM_KEY.format(parsed.database))


@dataclass
class DjangoCA:
    """One django-ca instance: database, data directory, CA, API user, servers."""

    redis_url: str
    database: str = os.environ.get("BENCH_PEER_DATABASE", "bench_django_ca")
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="django-ca-bench-")))
    python: Path = field(default_factory=ensure_venv)
    ca_serial: str = ""
    issuer: x509.Certificate | None = None
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        base = make_url(os.environ.get("BENCH_DATABASE_URL") or DEFAULT_PG)
        self.admin_url = base.set(drivername="postgresql").render_as_string(hide_password=False)
        self.url = base.set(database=self.database).render_as_string(hide_password=False)
        with bulk.connect(self.admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def env(self, **extra: str) -> dict[str, str]:
        url = make_url(self.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CA_", "DJANGO_"))}
        env.update(
            PYTHONPATH=str(SITE), DJANGO_SETTINGS_MODULE="django_ca_site.settings", BENCH_PEER_DATA=str(self.workdir),
            BENCH_PEER_DB=self.database, BENCH_PEER_DB_USER=url.username or "postgres",
            BENCH_PEER_DB_HOST=url.host or "127.0.0.1", BENCH_PEER_DB_PORT=str(url.port or 5432),
            BENCH_PEER_REDIS_URL=self.redis_url,
        )  # fmt: skip
        env.update(extra)
        return env

    def run(self, *argv: str, **extra_env: str) -> str:
        """A django-admin command or the peer tool, in the peer venv; its stdout."""
        out = subprocess.run([str(self.python), *argv], env=self.env(**extra_env), capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"django-ca step {argv} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def tool(self, *args: str, **extra_env: str) -> dict[str, object]:
        return dict(json.loads(self.run("-m", "django_ca_site.tool", *args, **extra_env).strip().splitlines()[-1]))

    def init(self) -> None:
        """Tables, a P-256 CA signing with SHA-256 (as ca-service's issuing CA), its OCSP responder
        key (made by init_ca), and the API user with the sign/view/revoke permissions."""
        self.run("-m", "django", "migrate", "--verbosity", "0")
        self.run("-m", "django", "init_ca", "--key-type", "EC", "--elliptic-curve", "secp256r1", "--algorithm", "SHA-256",
                 "--api-enable", "--output-format", "none", "Bench", "CN=Bench django-ca CA,O=Bench")  # fmt: skip
        setup = self.tool("setup", USER, PASSWORD)
        self.ca_serial = str(setup["ca_serial"])
        self.issuer = x509.load_der_x509_certificate(bytes.fromhex(str(setup["ca_der_hex"])))

    def load_certificates(self, count: int, *, revoked_every: int) -> None:
        """`count` end-entity certificates of the CA, every `revoked_every`-th revoked (1: all).
        django-ca reads a certificate's serial (for CRLs and OCSP) from its stored DER, so each row
        carries real DER: one certificate made here (issuer = the CA's subject, P-256 key, 20-byte
        serial) with the row's serial written over the template's serial bytes; the signature no
        longer matches those bytes, which django-ca never checks (the run verifies that its CRL
        lists exactly the stored serials and that OCSP answers name the asked serial)."""
        assert self.issuer is not None
        template, offset = _template_der(self.issuer)
        hex40 = "('4' || left(md5('pk' || i) || md5('pl' || i), 39))"  # 0x4.: positive, minimal, 20 bytes
        at = "now() - interval '1 day' - make_interval(secs => i)"
        revoked = f"mod(i, {revoked_every}) = 0"
        reasons = "ARRAY[" + ", ".join(f"'{r}'" for r in REASONS) + "]"
        columns = {
            "created": "now()", "updated": "now()", "not_before": at, "not_after": f"{at} + interval '365 days'",
            "cn": "'s' || i", "serial": f"upper({hex40})", "ca_id": "%(ca_id)s", "profile": "'client'",
            "autogenerated": "false", "revoked": revoked, "revoked_date": f"CASE WHEN {revoked} THEN {at} END",
            "revoked_reason": f"CASE WHEN {revoked} THEN ({reasons})[mod(i / {revoked_every}, {len(REASONS)}) + 1] ELSE '' END",
            "pub": f"overlay(%(template)s::bytea placing decode({hex40}, 'hex') from {offset + 1} for 20)",
        }  # fmt: skip
        with bulk.connect(self.url) as conn:
            conn.execute("TRUNCATE django_ca_certificate CASCADE")
            (ca_id,) = conn.execute(
                "SELECT id FROM django_ca_certificateauthority WHERE serial = %s", (self.ca_serial,)
            ).fetchone() or (0,)
            with bulk.indexes_deferred(conn, "django_ca_certificate"):
                bulk.generate(conn, "django_ca_certificate", columns, count, {"ca_id": ca_id, "template": template})
            conn.execute("VACUUM ANALYZE django_ca_certificate")
            conn.execute("CHECKPOINT")

    def scalar(self, query: str) -> object:
        with bulk.connect(self.url) as conn:
            row = conn.execute(query).fetchone()
        return row[0] if row else None

    def serials(self, count: int) -> list[tuple[str, bool]]:
        """`count` random stored serials (hex) and whether each is revoked."""
        with bulk.connect(self.url) as conn:
            rows = conn.execute("SELECT serial, revoked FROM django_ca_certificate ORDER BY random() LIMIT %s", (count,))
            return [(str(s), bool(r)) for s, r in rows.fetchall()]

    def start(self, workers: int, threads: int, timeout: int, *, ocsp_cache: bool) -> str:
        """gunicorn with ca-service's worker count, worker class and timeout (config/gunicorn.conf.py),
        on a free port; no access log, like ca-service's. With `ocsp_cache`, CA_OCSP_RESPONSE_CACHE_EXPIRES is set."""
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        argv = [str(VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--worker-class", "gthread" if threads > 1 else "sync", "--threads", str(threads),
                "--timeout", str(timeout), "--keep-alive", "5", "--error-logfile", "-", "django_ca_site.wsgi"]  # fmt: skip
        env = self.env(BENCH_PEER_HOSTNAME=f"127.0.0.1:{port}", BENCH_PEER_OCSP_CACHE="1" if ocsp_cache else "0")
        self.servers.append(start_server(argv, env, self.workdir / f"gunicorn-{port}.log", base + "/healthz"))
        return base

    def stop_servers(self) -> None:
        stop_processes(self.servers)
        self.servers.clear()

    def close(self) -> None:
        self.stop_servers()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if os.environ.get("BENCH_KEEP_DATABASE") != "1":
            with bulk.connect(self.admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _template_der(issuer: x509.Certificate) -> tuple[bytes, int]:
    """A client certificate from `issuer`'s name with a 20-byte serial, and the serial's offset."""
    serial = int.from_bytes(b"\x4f" + secrets.token_bytes(19), "big")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    needle = serial.to_bytes(20, "big")
    if der.count(needle) != 1:
        raise SystemExit("template certificate: the serial bytes are not unique in its DER")
    return der, der.index(needle)
