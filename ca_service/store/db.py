"""Engine and sessions. One write transaction per state change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.orm import Session, sessionmaker

from ca_service.store.errors import translate

# The unit of work a service holds open and hands to store functions (opaque to services).
Tx = Session
Sessions = sessionmaker[Session]

# A pooled connection that sat idle longer than this is pinged before use (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 1.0


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    statement_timeout_ms: int = 30_000,
    lock_timeout_ms: int = 10_000,
) -> Engine:
    """hide_parameters: an error's message and traceback never carry the statement's parameters
    (emails, names, CSRs, audit details) into the logs. PostgreSQL: every connection gets
    statement_timeout and lock_timeout (0: none), so a stuck lock or a runaway query fails that
    request with 503 database-unavailable instead of pinning a gunicorn worker."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock at BEGIN: a read-then-write transaction can never
            # find its snapshot stale at commit, which is what makes row "locks" hold on SQLite.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    options = f"-c statement_timeout={int(statement_timeout_ms)} -c lock_timeout={int(lock_timeout_ms)}"
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size * 2, hide_parameters=True, connect_args={"options": options}
    )
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that were idle, without `pool_pre_ping`'s
    round trip on every checkout (a noticeable share of the round trips of an issuance).

    A connection that waited in the pool longer than `idle_seconds` (the quiet periods in which a
    database restart, failover or idle-connection reaper strikes unseen) is pinged first, and a
    dead one is replaced before the caller sees it. A connection checked in moments ago is handed
    out as is: if the database went away in that instant, the first statement fails, SQLAlchemy
    invalidates the whole pool (every older connection is replaced on its next checkout) and
    that one request gets 503 database-unavailable -- the same window pre-ping itself leaves
    between its ping and the caller's first statement."""

    @event.listens_for(engine, "checkin")
    def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since <= idle_seconds:
            return  # a new connection, or one in use moments ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as err:  # the pool replaces the connection and retries the checkout
            raise exc.DisconnectionError(f"pooled connection idle {time.monotonic() - since:.0f} s failed its ping") from err


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Driver errors leave as the store's errors (store/errors.py): a UNIQUE constraint by name, a
    lost database as Unavailable; any other error as it is."""
    try:
        yield
    except exc.DBAPIError as err:
        translated = translate(err)
        if translated is err:
            raise
        raise translated from err


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception (translated_errors)."""
    with translated_errors(), factory() as session, session.begin():
        yield session


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A read-only session (nothing is committed); a lost database raises Unavailable."""
    with translated_errors(), factory() as session:
        yield session


def ping(engine: Engine) -> None:
    """One round trip; the driver's error if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
