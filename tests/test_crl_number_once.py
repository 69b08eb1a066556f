"""A CRL number is published (written to the public directory) at most once, with one content.

The publication's commit is made to fail for real, after the CRL is built and signed: a trigger
refuses the INSERT of the CRL row, which the transaction sends at COMMIT (PostgreSQL: a deferred
constraint trigger, checked at COMMIT itself; SQLite: the row is flushed at commit). Before the
fix the public file was written inside the transaction, so the failed CRL stayed on the web
under a number the next publication reused with other contents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ca_service.context import ServiceContext
from ca_service.pki.crl import crl_info
from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import publication as crl_publication
from ca_service.store import crls

_PG_REFUSE = [
    "CREATE OR REPLACE FUNCTION test_refuse_crl() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'CRL commit refused by the test'; END $$",
    "CREATE CONSTRAINT TRIGGER test_refuse_crl AFTER INSERT ON crls DEFERRABLE INITIALLY DEFERRED "
    "FOR EACH ROW EXECUTE FUNCTION test_refuse_crl()",
]
_PG_ALLOW = ["DROP TRIGGER IF EXISTS test_refuse_crl ON crls", "DROP FUNCTION IF EXISTS test_refuse_crl()"]
_SQLITE_REFUSE = [
    "CREATE TRIGGER test_refuse_crl BEFORE INSERT ON crls BEGIN SELECT RAISE(ABORT, 'CRL commit refused by the test'); END"
]
_SQLITE_ALLOW = ["DROP TRIGGER IF EXISTS test_refuse_crl"]


def _run(ctx: ServiceContext, statements: list[str]) -> None:
    with ctx.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


@contextmanager
def _crl_commits_fail(ctx: ServiceContext) -> Iterator[None]:
    _run(ctx, _PG_REFUSE if ctx.is_postgres else _SQLITE_REFUSE)
    try:
        yield
    finally:
        _run(ctx, _PG_ALLOW if ctx.is_postgres else _SQLITE_ALLOW)


def test_a_failed_commit_never_leaves_its_crl_number_on_the_web(ctx, clock):
    public = ctx.settings.public_dir / "issuing.crl"
    seen: dict[int, bytes] = {}

    def look() -> int:
        der = public.read_bytes()
        number = crl_info(der).crl_number
        assert seen.setdefault(number, der) == der, f"CRL #{number} was published twice with different contents"
        return number

    first = crl_publication.publish(ctx, force=True)[0]
    assert look() == first.crl_number
    clock.travel(seconds=2)
    with _crl_commits_fail(ctx), pytest.raises(DBAPIError, match="CRL commit refused"):
        crl_publication.publish(ctx, force=True)
    assert look() == first.crl_number  # the refused CRL never reached the public directory
    clock.travel(seconds=2)  # the next CRL has another thisUpdate: other contents
    again = crl_publication.publish(ctx, force=True)[0]
    assert again.crl_number == first.crl_number + 1  # the refused number is used, once, by this CRL
    assert look() == again.crl_number
    with ctx.sessions() as session:
        ca = active_ca(session, "issuing")
        assert ca is not None
        stored = crls.by_number(session, ca.id, again.crl_number)
        assert stored is not None and stored.der == public.read_bytes()


def test_an_older_crl_never_replaces_a_newer_file(ctx):
    """Publications commit one after the other but may reach the files out of order: one that
    finds a newer CRL committed leaves the files to it."""
    from ca_service.services.crl import files as crl_files

    public = ctx.settings.public_dir / "issuing.crl"
    first = crl_publication.publish(ctx, force=True)[0]
    with ctx.sessions() as session:
        ca = active_ca(session, "issuing")
        assert ca is not None
        ca_id, name = ca.id, ca.name
        older = crls.by_number(session, ca_id, first.crl_number)
        assert older is not None
        older_der = older.der
    second = crl_publication.publish(ctx, force=True)[0]
    newer_file = public.read_bytes()
    assert crl_info(newer_file).crl_number == second.crl_number
    assert crl_files.write_committed(ctx, ca_id, first.crl_number, [name, "issuing"], older_der) == []
    assert public.read_bytes() == newer_file
