"""Pre-signed OCSP responses in one process (issue 16, services/ocsp/invalidation): with the
invalidation watch live, a response in the process's LRU is served without reading the database;
a revocation (its issuer's counter bumped, as every revocation does) drops it at the next poll; a
Redis entry is never served without the database (a planted old `good` included); with the watch
not live every cached status is compared with the database. The multi-worker bound is measured
through a real gunicorn in tests/e2e/test_ocsp_staleness.py."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
from cryptography.x509 import ocsp
from sqlalchemy import update

from ca_service.context import ServiceContext
from ca_service.services.authority.hierarchy import active_issuer
from ca_service.services.ocsp import cache as ocsp_cache
from ca_service.services.ocsp import invalidation as ocsp_invalidation
from ca_service.services.ocsp import responder as ocsp_responder
from ca_service.services.ocsp.state import OcspState
from ca_service.store.models import CertificateAuthority
from tests.test_ocsp import now, ocsp_request, revoke_in_db, verify_response

_started: list[ServiceContext] = []


@pytest.fixture(autouse=True)
def _stop_watches() -> Iterator[None]:
    yield
    while _started:
        _stop(_started.pop())


def _stop(process: ServiceContext) -> None:
    process.local(OcspState).watch.stop()  # its thread ends at its next poll (and closes its connection)
    process.hot_reader.close()  # this thread's, not left to the garbage collector at interpreter exit


def _presigned(ctx: ServiceContext, **settings: object) -> ServiceContext:
    """A second process's view: its own LRU and watch, the same database and Redis."""
    fresh = ServiceContext(
        settings=dataclasses.replace(ctx.settings, **settings) if settings else ctx.settings,
        clock=ctx.clock, engine=ctx.engine, sessions=ctx.sessions, key_backend=ctx.keys,
    )  # fmt: skip
    fresh.local(OcspState).presigned = True
    _started.append(fresh)
    return fresh


def _until_live(process: ServiceContext, issuer_id: int) -> None:
    ocsp_invalidation.snapshot(process)  # starts the watch
    deadline = time.monotonic() + 10
    while not ocsp_invalidation.snapshot(process)[1]:
        assert time.monotonic() < deadline, "the invalidation watch never became live"
        time.sleep(0.05)


def _bump_counter(ctx: ServiceContext, issuer_id: int) -> None:
    """What store.certificates.revoke does in every revocation's transaction."""
    with ctx.engine.begin() as conn:
        conn.execute(
            update(CertificateAuthority)
            .where(CertificateAuthority.id == issuer_id)
            .values(revocation_count=CertificateAuthority.revocation_count + 1)
        )


def _status(process: ServiceContext, body: bytes) -> tuple[ocsp.OCSPCertStatus, bool]:
    answer = ocsp_responder.answer(process, body)
    return verify_response(answer.der, active_issuer(process).context.certificate, now()).certificate_status, answer.from_cache


@pytest.fixture
def issuer_id(ctx: ServiceContext) -> int:
    return active_issuer(ctx).id


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch) -> None:
    """Live for 30 s after a poll: on a loaded machine a poll may be late, and this test is about
    what a live process serves (the polls still drop the LRU when a counter moves)."""
    monkeypatch.setattr(ocsp_invalidation, "LIVE_SECONDS", 30.0)


def test_a_live_process_serves_its_cache_without_the_database_until_the_revocation_counter_moves(
    ctx, leaf, issuer, issuer_id, steady
):
    process = _presigned(ctx)
    _until_live(process, issuer_id)
    body = ocsp_request(leaf, issuer)
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, False)
    revoke_in_db(ctx, leaf, "key_compromise", now().replace(microsecond=0))  # the counter not (yet) moved
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, True)  # pre-signed: no database read
    _bump_counter(ctx, issuer_id)
    deadline = time.monotonic() + 5  # a poll every 0.25 s
    while _status(process, body)[0] != ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() < deadline, "the revocation was not seen within the bound"
        time.sleep(0.02)


def test_a_redis_entry_is_never_served_without_the_database(ctx, leaf, issuer, issuer_id):
    """Whoever can write to Redis can plant an old, genuinely signed `good` (or a process can write
    one around a revocation): a live process still checks a Redis hit against the database."""
    first = _presigned(ctx)
    _until_live(first, issuer_id)
    body = ocsp_request(leaf, issuer)
    assert _status(first, body) == (ocsp.OCSPCertStatus.GOOD, False)  # signed, and now in Redis
    key = ocsp_cache.cache_key(ctx, issuer_id, format(leaf.serial_number, "x"), "sha1")
    planted = ctx.redis().get(key)
    assert planted is not None
    revoke_in_db(ctx, leaf, "key_compromise", now().replace(microsecond=0))
    _bump_counter(ctx, issuer_id)
    ctx.redis().set(key, planted, ex=600)  # the `good` put back after the revocation
    second = _presigned(ctx)  # a cold LRU, live: reads Redis
    _until_live(second, issuer_id)
    assert _status(second, body) == (ocsp.OCSPCertStatus.REVOKED, False)  # compared, re-signed
    assert _status(second, body) == (ocsp.OCSPCertStatus.REVOKED, True)


def test_with_the_watch_not_live_every_cached_status_is_compared_with_the_database(ctx, leaf, issuer, issuer_id):
    process = _presigned(ctx)
    process.local(OcspState).watch.start(lambda watching: None)  # as if its watch ran but no poll ever succeeded (database down)
    body = ocsp_request(leaf, issuer)
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, False)
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, True)  # cached, its status compared
    revoke_in_db(ctx, leaf, "key_compromise", now().replace(microsecond=0))  # and nothing told anyone
    assert _status(process, body)[0] == ocsp.OCSPCertStatus.REVOKED


def test_redis_down_a_live_process_still_answers_and_sees_revocations(ctx, leaf, issuer, issuer_id, steady):
    process = _presigned(ctx, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    _until_live(process, issuer_id)  # the polls alone make it live
    body = ocsp_request(leaf, issuer)
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, False)
    assert _status(process, body) == (ocsp.OCSPCertStatus.GOOD, True)
    revoke_in_db(ctx, leaf, "key_compromise", now().replace(microsecond=0))
    _bump_counter(ctx, issuer_id)
    deadline = time.monotonic() + 5  # a poll every 0.25 s
    while _status(process, body)[0] != ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() < deadline, "the revocation was not seen within the bound"
        time.sleep(0.02)
