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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import Connection, Engine, Executable, Row, bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement

from ca_service.store.db import translated_errors
from ca_service.store.models import Certificate, CertificateAuthority, Notice, Organization, User


class HotReader(threading.local):
    """Per thread: the autocommit connection of the hot reads (`conn`, None until first use).

    On PostgreSQL a statement runs on the driver connection itself, as SQL compiled once per
    statement, prepared server-side: SQLAlchemy's per-execution work (parameter processing, result
    wrapping) cost more CPU than the read. Timestamps come back as aware UTC datetimes, as through
    the models' UTCDateTime."""

    compiled: ClassVar[dict[int, str]] = {}  # id(statement) -> SQL; statements are module constants, shared by threads

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None

    def close(self) -> None:
        """Give this thread's connection back to the pool (a thread done with the hot reads)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]] | Sequence[tuple[Any, ...]]:
        """Every row of one read-only statement (build `statement` once, at import, with bindparams).
        store.errors.Unavailable if the database cannot answer (after one retry on a fresh connection)."""
        with translated_errors():
            return self._rows(statement, params)

    def _rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row[Any]] | Sequence[tuple[Any, ...]]:
        if self.engine.dialect.name != "postgresql":
            with self.engine.connect() as pooled:
                return pooled.execute(statement, params).all()
        sql = self.compiled.get(id(statement))
        if sql is None:
            sql = self.compiled[id(statement)] = str(cast(ClauseElement, statement).compile(dialect=self.engine.dialect))
        for attempt in (1, 2):
            conn = self.conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                self.conn = conn
            try:
                return _utc(self._execute(conn, sql, params))
            except DBAPIError as exc:
                self.conn = None
                with suppress(Exception):
                    conn.invalidate() if exc.connection_invalidated else conn.close()
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("not reached")

    def _execute(self, conn: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        raw: Any = conn.connection.driver_connection
        try:
            return list(raw.execute(sql, params, prepare=True).fetchall())
        except self.engine.dialect.loaded_dbapi.Error as err:
            lost = self.engine.dialect.is_disconnect(err, raw, None)
            raise DBAPIError.instance(
                sql, params, err, self.engine.dialect.loaded_dbapi.Error, connection_invalidated=lost
            ) from err


def _utc(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row) for row in rows]


@dataclass(frozen=True, slots=True)
class CertificateStatus:
    issuer_id: int
    revoked_at: datetime | None
    revocation_reason: str | None


_STATUS_QUERY = select(Certificate.issuer_id, Certificate.revoked_at, Certificate.revocation_reason).where(
    Certificate.serial == bindparam("serial")
)  # built once: the hot path only binds the serial (UNIQUE index on certificates.serial)


def certificate_status(reader: HotReader, serial: str) -> CertificateStatus | None:
    """The OCSP responder's one read: issuer and revocation of a certificate by serial."""
    rows = reader.rows(_STATUS_QUERY, {"serial": serial})
    return CertificateStatus(*rows[0]) if rows else None


_REVOCATION_COUNTS = select(CertificateAuthority.id, CertificateAuthority.revocation_count).order_by(CertificateAuthority.id)


def revocation_counts(reader: HotReader) -> tuple[tuple[int, int], ...]:
    """Every CA's revocation counter (bumped in the transaction of every revocation it issued,
    store.certificates.revoke): a change means some certificate was revoked since the last read.
    A handful of rows: what the OCSP invalidation watch polls a few times a second."""
    return tuple((row[0], row[1]) for row in reader.rows(_REVOCATION_COUNTS, {}))


@dataclass(frozen=True, slots=True)
class LoginCheckRow:
    login_method: str
    serial: str | None  # the presented certificate as stored (None: not issued here)
    certificate_login_id: str | None
    fingerprint_sha256: str | None  # of the stored DER: equal to the presented one's iff the same bytes
    revoked_at: datetime | None
    not_after: datetime | None
    notice_kind: str | None
    notice_created_at: datetime | None


# The whole check is one indexed read, compiled once: the user and its organisation's method, the
# presented certificate as stored (by serial) and that certificate's notices. A valid certificate
# of this login ID can only be the presented one (at most one per login ID), so its notices are
# exactly what `current_notices` would list for an allowed login.
_USERS, _ORGS, _CERTS, _NOTICES = User.__table__, Organization.__table__, Certificate.__table__, Notice.__table__
_CHECK = (
    select(
        _ORGS.c.login_method,
        _CERTS.c.serial,
        _CERTS.c.login_id.label("certificate_login_id"),
        _CERTS.c.fingerprint_sha256,
        _CERTS.c.revoked_at,
        _CERTS.c.not_after,
        _NOTICES.c.kind.label("notice_kind"),
        _NOTICES.c.created_at.label("notice_created_at"),
    )
    .select_from(
        _USERS.join(_ORGS, _ORGS.c.org_id == _USERS.c.org_id)
        .outerjoin(_CERTS, _CERTS.c.serial == bindparam("serial"))
        .outerjoin(_NOTICES, _NOTICES.c.serial == _CERTS.c.serial)
    )
    .where(_USERS.c.login_id == bindparam("login_id"))
    .order_by(_NOTICES.c.id)
)


def login_check_rows(reader: HotReader, login_id: str, serial: str | None) -> list[LoginCheckRow]:
    """No rows: the login ID is not registered. Else one row per notice of the presented
    certificate (at least one row)."""
    return [LoginCheckRow(*row) for row in reader.rows(_CHECK, {"login_id": login_id, "serial": serial})]
