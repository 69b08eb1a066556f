"""Everything a service function needs, built once per process: settings, clock, database,
key backend, and the per-process caches, each a typed field (no string-keyed bag).

Neutral ground: api, services, outbox, workers and cli import it; it imports no service (the
cache fields name service types for the type checker only)."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Generic, TypeVar

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ca_service.clock import Clock, clock_from_settings
from ca_service.pki.integrity import IntegrityKeys
from ca_service.pki.keys import EncryptedFileKeyBackend, KeyBackend
from ca_service.store.db import make_engine, make_session_factory
from ca_service.store.hot_reads import HotReader
from config.settings import Settings, load_settings

if TYPE_CHECKING:  # value types the caches hold; never imported at run time
    from cryptography import x509

    from ca_service.services.access.clients import ClientInfo
    from ca_service.services.authority.hierarchy import ActiveIssuer
    from ca_service.services.authority.responder_certificates import Responder
    from ca_service.services.ocsp.cache import CachedResponse
    from ca_service.services.ocsp.responder import IssuerIndex

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Actor:
    """Who causes a change: the API client (or CLI operator) and the bank user it acts for."""

    client_name: str | None
    role: str
    acting_login_id: str | None = None
    request_id: str | None = None
    requested_by: str | None = None  # dual control: the operator who asked; client_name approved it


class Once(Generic[T]):
    """A value made once per process, on first use (double-checked under its own lock)."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.lock = threading.Lock()

    def get(self, make: Callable[[], T]) -> T:
        value = self.value
        if value is not None:
            return value
        with self.lock:
            if self.value is None:
                self.value = make()
            return self.value

    def clear(self) -> None:
        self.value = None


class Expiring(Generic[T]):
    """A value kept for `seconds` (monotonic clock), then made again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entry: tuple[float, T] | None = None

    def get(self, make: Callable[[], T]) -> T:
        entry = self._entry
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = make()
        self._entry = (time.monotonic() + self.seconds, value)
        return value

    def clear(self) -> None:
        self._entry = None


class Lru(Generic[K, V]):
    """A thread-safe bounded LRU (gthread workers share one per process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def drop(self, keys: list[K]) -> None:
        with self.lock:
            for key in keys:
                self.entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


OCSP_LOCAL_ENTRIES = 20_000  # per process: ~20 MB (a response with its responder certificate is ~1 KB)
LOGIN_CHECK_ISSUERS_SECONDS = 60.0


@dataclass
class OcspState:
    """The OCSP responder's per-process state (services/ocsp_*)."""

    issuers: IssuerIndex | None = None  # the issuing CAs held and their CertID hashes
    issuers_lock: threading.Lock = field(default_factory=threading.Lock)
    responders: dict[int, tuple[Responder, float]] = field(default_factory=dict)  # issuer id -> (responder, checked at)
    responders_lock: threading.Lock = field(default_factory=threading.Lock)
    local: Lru[str, CachedResponse] = field(default_factory=lambda: Lru(OCSP_LOCAL_ENTRIES))
    issuer_tags: dict[int, str] = field(default_factory=dict)  # issuer id -> SKI hex (the Redis key's issuer)
    redis_down_until: float = 0.0  # circuit breaker: Redis skipped until this monotonic time
    # Pre-signed responses (services/ocsp/invalidation): on in API servers, off in tests' apps
    presigned: bool = False
    watch_pid: int | None = None  # the process whose invalidation watch runs
    live_until: float = 0.0  # LRU hits skip the database until this monotonic time
    revocation_counts: dict[int, int] = field(default_factory=dict)  # CA id -> counter, at the last poll
    generation: int = 0  # bumped by every drop: a status read before it is not cached after it
    cleared_at: int = 0  # the generation of the last drop of the whole LRU
    dropped: dict[str, int] = field(default_factory=dict)  # key -> generation of its last drop
    generation_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class AuthBlockState:
    """This process's copy of the addresses the bad-token throttle blocks (services/access/blocks)."""

    enabled: bool = False  # on in API servers (api/app.py), off in tests' in-process apps
    watch_pid: int | None = None  # the process whose watch runs
    live_until: float = 0.0  # the copy answers for Redis until this monotonic time
    blocked: dict[str, float] = field(default_factory=dict)  # address -> monotonic time its window closes
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class SealThrottle:
    """When this process last sealed the audit chain after a commit (services/audit/post_commit)."""

    last: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ServiceContext:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    key_backend: KeyBackend | None = None
    redis_conn: Redis | None = None
    issuer: Once[ActiveIssuer] = field(default_factory=Once)
    login_check_issuers: Expiring[tuple[x509.Certificate, ...]] = field(
        default_factory=lambda: Expiring(LOGIN_CHECK_ISSUERS_SECONDS)
    )
    ocsp: OcspState = field(default_factory=OcspState)
    # token digest -> (cache deadline, client, the stored hash it matched, when that token stops working)
    auth_cache: dict[str, tuple[float, ClientInfo | None, str, datetime | None]] = field(default_factory=dict)
    auth_throttle_down_until: float = 0.0  # services/access/throttle: Redis skipped until this monotonic time
    auth_blocks: AuthBlockState = field(default_factory=AuthBlockState)
    seal: SealThrottle = field(default_factory=SealThrottle)
    hot_reader: HotReader = field(init=False)

    def __post_init__(self) -> None:
        self.hot_reader = HotReader(self.engine)

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
