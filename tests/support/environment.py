"""The test environment: a database, Redis and data dir per pytest(-xdist) worker.

With DATABASE_URL / REDIS_URL set (CI), tests use that PostgreSQL server (one fresh database
per worker) and that Redis server (one database number per worker and run, claimed in db 0). Without them, SQLite and
an embedded redis-server on a unix socket, so the suite runs on a machine that has neither.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ca_service.cli.embedded_redis import EmbeddedRedis
from tests.support.hsm import SoftHsm, create_softhsm

PASSPHRASE = "test-passphrase-not-secret"
ROOT_PASSPHRASE = "test-root-passphrase-not-secret"
# CA_TEST_KEY_BACKEND=pkcs11: every test environment keeps its CA keys in a fresh SoftHSM2 token
# (CI runs a representative subset so, `.ci/run`); default: encrypted key files.
CONSOLE_SECRET = "test-console-session-key-0123456789abcdef"
KEY_BACKEND = os.environ.get("CA_TEST_KEY_BACKEND") or "file"


def clock_offset_seconds(clock_file: Path | None) -> float:
    """The offset the processes under test add to the system time (CA_CLOCK_OFFSET_FILE; none:
    0). The file is the one place it is kept: TimeMachine and tests/support/console.fresh_otp
    both move it."""
    if clock_file is None or not clock_file.exists():
        return 0.0
    return float(clock_file.read_text().strip() or "0")


@dataclass
class TestEnvironment:
    __test__ = False  # a fixture value, not a test class (no PytestCollectionWarning)

    data_dir: Path
    database_url: str
    redis_url: str
    clock_file: Path
    embedded_redis: EmbeddedRedis | None
    admin_url: str | None = None  # PostgreSQL: where to drop the run's database afterwards
    redis_claim: RedisClaim | None = None  # shared Redis: the database number this worker holds
    hsm: SoftHsm | None = None  # CA_TEST_KEY_BACKEND=pkcs11: the token holding the CA keys

    def close(self) -> None:
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
        if self.redis_claim is not None:
            self.redis_claim.release()
        if self.admin_url is not None:
            admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(self.database_url).database}" WITH (FORCE)'))
            admin.dispose()

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for processes under test (gunicorn, rq worker, CLI)."""
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            CA_DATA_DIR=str(self.data_dir),
            CA_KEY_PASSPHRASE=PASSPHRASE,
            CA_ROOT_KEY_PASSPHRASE=ROOT_PASSPHRASE,
            CA_CLOCK_OFFSET_FILE=str(self.clock_file),
            CA_ORGANIZATION_NAME="Test Bank",
            CA_CONSOLE_SECRET_KEY=CONSOLE_SECRET,
            CA_CONSOLE_SECURE_COOKIES="false",  # the console is served over plain http in tests
        )
        if self.hsm is not None:
            env.update(self.hsm.env())
        env.update(extra)
        return env


def _postgres_database(base_url: str, worker_id: str) -> str:
    url = make_url(base_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    # unique per test run, so two runs on one machine (a developer's and CI's) never collide
    name = f"{url.database}_ca_{worker_id}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


CLAIM_KEY = "ca-service-tests:db:{}"  # in db 0: which test worker holds database number N
CLAIM_SECONDS = 6 * 3600  # a run killed without cleaning up frees its database after this


@dataclass
class RedisClaim:
    """One Redis database number held by one test worker of one run, so that two runs against the
    same Redis (a developer's and CI's, or two worktrees) never share queues or caches. Claimed
    with SET NX in db 0, flushed before use, released (only if still ours) at the end. The URL
    keeps REDIS_URL's scheme and credentials (rediss://, a password)."""

    base_url: str
    db: int
    token: str

    def url(self) -> str:
        return _with_db(self.base_url, self.db)

    def release(self) -> None:
        conn = redis.Redis.from_url(_with_db(self.base_url, 0))
        key = CLAIM_KEY.format(self.db)
        if conn.get(key) == self.token.encode():
            conn.delete(key)
        OWNED_REDIS_URLS.discard(self.url())


# The Redis databases this process may FLUSHDB: the ones it claimed, or an embedded server it
# started. A helper that empties a database (tests/support/workers.py) refuses any other.
OWNED_REDIS_URLS: set[str] = set()


def _with_db(url: str, db: int) -> str:
    """REDIS_URL with its database number replaced (scheme, credentials, host and port kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}", query="", fragment=""))


def assert_owned_redis(url: str) -> None:
    if url not in OWNED_REDIS_URLS:
        raise RuntimeError(f"refusing to empty Redis database {url}: this test run did not claim or create it")


def _holder_gone(holder: str) -> bool:
    """True if a claim was made by a process of this machine that no longer exists."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _claim_redis_db(base_url: str) -> RedisClaim:
    """The first free database number 1..(databases - 1) of the Redis at `base_url`."""
    base = base_url
    conn = redis.Redis.from_url(_with_db(base, 0))
    databases = int(conn.config_get("databases").get("databases", 16))
    token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
    for db in range(1, databases):
        key = CLAIM_KEY.format(db)
        if not conn.set(key, token, nx=True, ex=CLAIM_SECONDS):
            holder = conn.get(key)
            if holder is None or not _holder_gone(holder.decode(errors="replace")):
                continue
            conn.delete(key)  # its run was killed without cleaning up: take the database over
            if not conn.set(key, token, nx=True, ex=CLAIM_SECONDS):
                continue
        redis.Redis.from_url(_with_db(base, db)).flushdb()  # ours now: what an earlier holder left
        claim = RedisClaim(base, db, token)
        OWNED_REDIS_URLS.add(claim.url())
        return claim
    raise RuntimeError(f"every Redis database 1..{databases - 1} at {base} is held by another test run; wait or flush db 0")


def create_environment(root: Path, worker_id: str) -> TestEnvironment:
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    base_db = os.environ.get("DATABASE_URL", "")
    admin_url = None
    if base_db.startswith("postgresql"):
        database_url = _postgres_database(base_db, worker_id)
        admin_url = base_db.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        database_url = f"sqlite:///{data_dir / 'ca.sqlite3'}"
    embedded = None
    claim = None
    base_redis = os.environ.get("REDIS_URL", "")
    if base_redis.startswith(("redis://", "rediss://")):
        claim = _claim_redis_db(base_redis)
        redis_url = claim.url()
    elif base_redis and base_redis not in OWNED_REDIS_URLS:  # a unix socket: no number to claim, and tests flush theirs
        raise RuntimeError(f"REDIS_URL={base_redis!r}: give the tests a redis:// or rediss:// URL (or none: embedded)")
    else:  # none, or the embedded one this run started for the session (a second environment gets its own)
        embedded = EmbeddedRedis(root / "redis")
        redis_url = embedded.start()
        OWNED_REDIS_URLS.add(redis_url)
    hsm = None
    if KEY_BACKEND == "pkcs11":
        hsm = create_softhsm(root / "softhsm", f"ca-{worker_id}")
    elif KEY_BACKEND != "file":
        raise RuntimeError(f"CA_TEST_KEY_BACKEND={KEY_BACKEND!r} must be file or pkcs11")
    return TestEnvironment(data_dir, database_url, redis_url, root / "clock-offset", embedded, admin_url, claim, hsm)
