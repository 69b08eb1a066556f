"""A database that goes away. The API answers 503 database-unavailable, never 500. The pool
(ca_service/store/db.py) pings a connection that sat idle and replaces it if its server side is
gone; one used moments ago is not pinged, so a disconnect in that instant fails one request and
the pool then replaces every old connection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ca_service.api.app import create_app
from ca_service.context import ServiceContext
from ca_service.store.db import make_engine, make_session_factory


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(ctx: ServiceContext, pid: int) -> None:
    with ctx.engine.connect() as admin:
        assert admin.execute(text(f"SELECT pg_terminate_backend({pid})")).scalar()
        admin.execute(text("SELECT pg_sleep(0.05)"))  # the backend is gone before we go on


@pytest.fixture
def pg_url(ctx: ServiceContext) -> Iterator[str]:
    if not ctx.is_postgres:
        pytest.skip("PostgreSQL only: server-side disconnects")
    yield ctx.settings.database_url


def test_an_idle_connection_whose_server_went_away_is_replaced_unseen(ctx: ServiceContext, pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, ping_after_idle=0.0)
    try:
        old = _backend_pid(engine)
        _terminate(ctx, old)
        assert _backend_pid(engine) != old  # the checkout's ping failed, a fresh connection answered
    finally:
        engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged_and_one_failure_renews_the_pool(ctx: ServiceContext, pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=2, ping_after_idle=3600.0)
    try:
        with engine.connect() as first, engine.connect() as second:  # two pooled connections
            pids = [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in (first, second)]
        for pid in pids:
            _terminate(ctx, pid)
        with pytest.raises(DBAPIError) as failure:
            _backend_pid(engine)  # no ping: this request meets the dead connection
        assert failure.value.connection_invalidated
        assert _backend_pid(engine) not in pids  # the pool was renewed: the other dead one is not reused
    finally:
        engine.dispose()


def test_an_unreachable_database_is_a_503_problem_not_a_500(ctx: ServiceContext, tokens: dict[str, str], tmp_path: Path) -> None:
    dead_url = (
        "postgresql+psycopg://postgres@127.0.0.1:1/ca?connect_timeout=2"  # nothing listens on port 1
        if ctx.is_postgres
        else f"sqlite:///{tmp_path / 'no-such-dir' / 'ca.sqlite3'}"
    )
    engine = make_engine(dead_url)
    dead = ServiceContext(
        settings=ctx.settings, clock=ctx.clock, engine=engine, sessions=make_session_factory(engine), key_backend=ctx.keys
    )
    client = create_app(dead).test_client()
    resp = client.get("/v1/users/u1", headers={"Authorization": f"Bearer {tokens['frontend']}"})
    assert resp.status_code == 503
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "database-unavailable"
    assert resp.headers["Retry-After"] == "5"
    assert client.get("/readyz").status_code == 503
    engine.dispose()
