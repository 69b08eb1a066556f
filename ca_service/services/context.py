"""Everything a service function needs, built once per process."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ca_service.clock import Clock, clock_from_settings
from ca_service.pki.keys import EncryptedFileKeyBackend, KeyBackend
from ca_service.store.db import DatabaseUnavailable as DatabaseUnavailable  # re-exported: the api maps it to 503
from ca_service.store.db import make_engine, make_session_factory
from config.settings import Settings


@dataclass(frozen=True)
class Actor:
    """Who causes a change: the API client (or CLI operator) and the bank user it acts for."""

    client_name: str | None
    role: str
    acting_login_id: str | None = None
    request_id: str | None = None


@dataclass
class ServiceContext:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    key_backend: KeyBackend | None = None
    cache: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @cached_property
    def keys(self) -> KeyBackend:
        if self.key_backend is None:
            self.key_backend = EncryptedFileKeyBackend(self.settings.keys_dir, self.settings.key_passphrase())
        return self.key_backend

    def redis(self) -> Redis:
        """A Redis connection with short timeouts: Redis being down must never stall a request."""
        conn = self.cache.get("redis")
        if not isinstance(conn, Redis):
            if self.settings.redis_url is None:
                raise RuntimeError("REDIS_URL is not set")
            conn = Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=1)
            self.cache["redis"] = conn
        return conn

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def build_context(settings: Settings, *, clock: Clock | None = None, pool_size: int = 5) -> ServiceContext:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url, pool_size=pool_size)
    return ServiceContext(
        settings=settings,
        clock=clock or clock_from_settings(settings.clock_offset_file),
        engine=engine,
        sessions=make_session_factory(engine),
    )
