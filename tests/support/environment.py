"""The test environment: a database, Redis and data dir per pytest(-xdist) worker.

With DATABASE_URL / REDIS_URL set (CI), tests use that PostgreSQL server (one fresh database
per worker) and that Redis server (one database number per worker). Without them, SQLite and
an embedded redis-server on a unix socket, so the suite runs on a machine that has neither.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ca_service.cli.embedded_redis import EmbeddedRedis

PASSPHRASE = "test-passphrase-not-secret"


@dataclass
class TestEnvironment:
    data_dir: Path
    database_url: str
    redis_url: str
    clock_file: Path
    embedded_redis: EmbeddedRedis | None
    admin_url: str | None = None  # PostgreSQL: where to drop the run's database afterwards

    def close(self) -> None:
        if self.embedded_redis is not None:
            self.embedded_redis.stop()
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
            CA_CLOCK_OFFSET_FILE=str(self.clock_file),
            CA_ORGANIZATION_NAME="Test Bank",
        )
        env.update(extra)
        return env


def _worker_number(worker_id: str) -> int:
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


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


def _redis_url(base_url: str, worker_id: str) -> str:
    url = make_url(base_url.replace("redis://", "redis+x://", 1)) if base_url.startswith("redis://") else None
    if url is None:
        return base_url
    db = 1 + _worker_number(worker_id)  # keep the worker's queues apart from anything on db 0
    return f"redis://{url.host or '127.0.0.1'}:{url.port or 6379}/{db}"


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
    if os.environ.get("REDIS_URL"):
        redis_url = _redis_url(os.environ["REDIS_URL"], worker_id)
    else:
        embedded = EmbeddedRedis(root / "redis")
        redis_url = embedded.start()
    return TestEnvironment(data_dir, database_url, redis_url, root / "clock-offset", embedded, admin_url)
