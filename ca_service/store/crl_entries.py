"""The revoked, unexpired certificates of one CA, streamed for its CRL as (serial hex, revocation
time as UTC 'YYYYMMDDHHMMSS', reason name) text rows — the form pki.crl_fast.encode_entries takes.

On PostgreSQL the rows come through `COPY (SELECT ...) TO STDOUT` on the caller's own connection
(same transaction, same snapshot and locks): several times faster than SQLAlchemy result rows.
Elsewhere (SQLite) an ordinary streamed SELECT.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca_service.store.models import Certificate

_COPY = (
    "COPY (SELECT serial, to_char(timezone('UTC', revoked_at), 'YYYYMMDDHH24MISS'),"
    " coalesce(revocation_reason, 'unspecified') FROM certificates"
    " WHERE issuer_id = %s AND revoked_at IS NOT NULL AND not_after > %s) TO STDOUT"
)


def revoked_entries(session: Session, issuer_id: int, now: datetime) -> Iterator[tuple[str, str, str]]:
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cur, cur.copy(_COPY, (issuer_id, now)) as copy:
            for serial, stamp, reason in copy.rows():
                yield serial, stamp, reason
        return
    rows = conn.execute(
        select(
            Certificate.serial,
            func.strftime("%Y%m%d%H%M%S", Certificate.revoked_at),
            func.coalesce(Certificate.revocation_reason, "unspecified"),
        )
        .where(Certificate.issuer_id == issuer_id, Certificate.revoked_at.is_not(None), Certificate.not_after > now)
        .execution_options(yield_per=20_000)
    )
    for serial, stamp, reason in rows:
        yield serial, stamp, reason
