"""Single-statement reads on the hot paths (login checks, OCSP) in one round trip.

A pooled checkout on PostgreSQL costs a pre-ping, a BEGIN and a ROLLBACK around the one query,
three round trips more than the read itself. A single SELECT is already a consistent snapshot,
so each thread keeps one autocommit connection for these reads; a dropped connection is
replaced and the read retried once. SQLite (embedded mode) uses the pool as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, cast

from sqlalchemy import Connection, Executable, Row
from sqlalchemy.exc import DBAPIError

from ca_service.services.context import ServiceContext


def read_rows(ctx: ServiceContext, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]]:
    """Every row of one read-only statement (build `statement` once, at import, with bindparams)."""
    if not ctx.is_postgres:
        with ctx.engine.connect() as pooled:
            return pooled.execute(statement, params).all()
    local = cast(threading.local, ctx.cache.setdefault("hot_reader", threading.local()))
    for attempt in (1, 2):
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            local.conn = conn
        try:
            return conn.execute(statement, params).all()
        except DBAPIError as exc:
            local.conn = None
            with suppress(Exception):
                conn.close()
            if attempt == 2 or not exc.connection_invalidated:
                raise
    raise AssertionError("not reached")
