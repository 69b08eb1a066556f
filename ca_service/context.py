"""Everything a service function needs, built once per process: settings, clock, database,
key backend, Redis, the hot reader, and `local(T)`: a capability's per-process state, keyed by its
class (no string-keyed bag).

Neutral ground: api, services, outbox, workers and cli import it; it imports no service, not even
for the type checker: each capability owns its state class (.importlinter)."""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar, cast

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ca_service.clock import Clock, clock_from_settings
from ca_service.pki.integrity import IntegrityKeys
from ca_service.pki.keys import EncryptedFileKeyBackend, KeyBackend
from ca_service.store.db import make_engine, make_session_factory
from ca_service.store.hot_reads import HotReader
from config.settings import Settings, load_settings

T = TypeVar("T")

# What `ServiceContext.redis()` and a command on its connection raise when Redis cannot be used
# (RuntimeError: REDIS_URL is not set), for those who then go on without it.
REDIS_ERRORS = (RedisError, OSError, RuntimeError)


@dataclass(frozen=True)
class Actor:
    """Who causes a change: the API client (or CLI operator) and the bank user it acts for."""

    client_name: str | None
    role: str
    acting_login_id: str | None = None
    request_id: str | None = None
    requested_by: str | None = None  # dual control: the operator who asked; client_name approved it


class _Locals:
    """The per-process state of capabilities, one instance per type. A forked child (an RQ work
    horse, a gunicorn worker, any os.fork) starts with none: what the parent held (threads,
    connections, a decrypted key's handle, copies kept live by a watch) is not the child's."""

    def __init__(self) -> None:
        self.values: dict[type, object] = {}
        self.lock = threading.Lock()
        _ALL_LOCALS.add(self)

    def make(self, kind: type[T]) -> T:
        with self.lock:
            found = self.values.get(kind)
            if found is None:
                found = self.values[kind] = kind()
            return cast(T, found)

    def forget(self) -> None:
        self.values = {}
        self.lock = threading.Lock()  # another thread of the parent may have held it at the fork


_ALL_LOCALS: weakref.WeakSet[_Locals] = weakref.WeakSet()


def _forget_after_fork() -> None:
    for found in list(_ALL_LOCALS):
        found.forget()


os.register_at_fork(after_in_child=_forget_after_fork)


@dataclass
class ServiceContext:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    key_backend: KeyBackend | None = None
    redis_conn: Redis | None = None
    # the capabilities' per-process state (local()); dataclasses.replace(ctx, ...) shares it
    local_state: _Locals = field(default_factory=_Locals, repr=False, compare=False)
    hot_reader: HotReader = field(init=False)

    def __post_init__(self) -> None:
        self.hot_reader = HotReader(self.engine)

    def local(self, kind: type[T]) -> T:
        """This process's state of a capability, keyed by its class (made on first use as
        `kind()`, once even when threads race; new after a fork). The class, with its behaviour,
        belongs to the capability: the context knows none."""
        found = self.local_state.values.get(kind)
        return cast(T, found) if found is not None else self.local_state.make(kind)

    @cached_property
    def keys(self) -> KeyBackend:
        if self.key_backend is None:
            self.key_backend = make_key_backend(self.settings)
        return self.key_backend

    @cached_property
    def integrity(self) -> IntegrityKeys:
        """MAC keys Redis and the database do not hold (pki/integrity.py)."""
        return IntegrityKeys(self.settings.integrity_key_path)

    def redis(self) -> Redis:
        """A Redis connection with short timeouts: Redis being down must never stall a request."""
        if self.redis_conn is None:
            if self.settings.redis_url is None:
                raise RuntimeError("REDIS_URL is not set")
            self.redis_conn = Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=1)
        return self.redis_conn

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def make_key_backend(settings: Settings) -> KeyBackend:
    """The backend CA_KEY_BACKEND names. Nothing here touches an HSM or reads a passphrase: that
    happens when a key is first used (never in a gunicorn master, never the root's outside a
    ceremony command)."""
    if settings.key_backend == "pkcs11":
        from ca_service.pki.keys_pkcs11 import Pkcs11KeyBackend  # noqa: PLC0415 - PyKCS11 only where an HSM is used

        assert settings.pkcs11_module and settings.pkcs11_token_label and settings.pkcs11_pin_file  # load_settings checked
        return Pkcs11KeyBackend(settings.pkcs11_module, settings.pkcs11_token_label, settings.pkcs11_pin_file)
    return EncryptedFileKeyBackend(settings.keys_dir, settings.key_passphrase, settings.root_key_passphrase)


def build_context(
    settings: Settings, *, clock: Clock | None = None, pool_size: int = 5, create_data_dir: bool = True
) -> ServiceContext:
    if create_data_dir:  # a read-only CLI command passes False: it leaves nothing behind
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(
        settings.database_url,
        pool_size=pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
        lock_timeout_ms=settings.db_lock_timeout_ms,
    )
    return ServiceContext(
        settings=settings,
        clock=clock or clock_from_settings(settings.clock_offset_file),
        engine=engine,
        sessions=make_session_factory(engine),
    )


_process: ServiceContext | None = None
_pid: int | None = None


def process_context(pool_size: int = 2) -> ServiceContext:
    """The context of a worker process, built once. RQ forks a work horse per job: in a new
    process the pooled database connections (and the Redis connection) of the parent are dropped
    (not closed) before first use."""
    global _process, _pid
    if _process is None:
        _process = build_context(load_settings(), pool_size=pool_size)
    elif _pid != os.getpid():
        _process.engine.dispose(close=False)
        _process.redis_conn = None
        _process.hot_reader = HotReader(_process.engine)
    _pid = os.getpid()
    return _process
