"""Issue 26 finding 3: whoever can write to Redis must not decide a business outcome.

(a) OCSP: a genuinely signed response planted under another label or another certificate's key is
never served: a Redis entry is served only if its own DER names the requested serial and the
status the database gives, and it carries a MAC under a key Redis does not hold."""

from __future__ import annotations

import json
import os
import pickle
import re
import zlib
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from redis import Redis
from rq import Queue
from sqlalchemy import select

from ca_service import metrics_collectors
from ca_service.api.app import create_app
from ca_service.services.authority.hierarchy import active_issuer
from ca_service.services.ocsp import cache as ocsp_cache
from ca_service.services.ocsp import invalidation as ocsp_invalidation
from ca_service.services.ocsp import responder as ocsp_responder
from ca_service.store.models import Crl, Notice
from tests.console.test_console_app import Console
from tests.support.console import make_operator
from tests.support.pki import make_csr
from tests.support.workers import run_worker_burst
from tests.test_ocsp import now as utcnow
from tests.test_ocsp import ocsp_request, revoke_in_db
from tests.test_ocsp_presigned import _bump_counter, _presigned, _status, _stop_watches, _until_live  # noqa: F401
from tests.test_operations_cli import ca
from tests.test_operations_cli import redis_queues as redis_queues  # a fixture, used by name


@pytest.fixture
def issuer_id(ctx):  # type: ignore[no-untyped-def]
    return active_issuer(ctx).id


def _other_certificate(api) -> x509.Certificate:  # type: ignore[no-untyped-def]
    api.user("bob", "acme")
    r = api.issue("bob", make_csr()[1])
    assert r.status == 201, r
    return x509.load_pem_x509_certificate(r.json["certificate_pem"].encode())


def _key(ctx, issuer_id: int, cert: x509.Certificate) -> str:  # type: ignore[no-untyped-def]
    return ocsp_cache.cache_key(ctx, issuer_id, format(cert.serial_number, "x"), "sha1")


def test_an_old_signed_good_planted_under_a_revoked_label_is_never_served(ctx, leaf, issuer, issuer_id):
    first = _presigned(ctx)
    _until_live(first, issuer_id)
    body = ocsp_request(leaf, issuer)
    assert _status(first, body) == (ocsp.OCSPCertStatus.GOOD, False)  # signed and cached in Redis
    key = _key(ctx, issuer_id, leaf)
    genuine_good = ctx.redis().get(key)
    assert genuine_good is not None
    revoke_in_db(ctx, leaf, "key_compromise", utcnow().replace(microsecond=0))
    _bump_counter(ctx, issuer_id)
    # the attacker relabels the old `good` as `revoked`, so it matches the database's status
    label, rest = genuine_good.split(b" ", 1)
    assert label == b"good"
    ctx.redis().set(key, b"revoked " + rest, ex=600)
    ocsp_invalidation.publish(ctx, ocsp_cache.cache_prefix(ctx, issuer_id, format(leaf.serial_number, "x")))
    second = _presigned(ctx)  # a cold LRU, live: reads Redis
    _until_live(second, issuer_id)
    for _ in range(3):
        assert _status(second, body)[0] == ocsp.OCSPCertStatus.REVOKED


def test_another_certificates_response_planted_under_a_good_key_is_never_served(api, ctx, leaf, issuer, issuer_id):
    other = _other_certificate(api)
    process = _presigned(ctx)
    _until_live(process, issuer_id)
    assert _status(process, ocsp_request(other, issuer))[0] == ocsp.OCSPCertStatus.GOOD
    others = ctx.redis().get(_key(ctx, issuer_id, other))
    assert others is not None
    ctx.redis().set(_key(ctx, issuer_id, leaf), others, ex=600)  # bob's good, under alice's key
    fresh = _presigned(ctx)
    _until_live(fresh, issuer_id)
    for _ in range(3):
        der = ocsp_responder.answer(fresh, ocsp_request(leaf, issuer)).der
        assert ocsp.load_der_ocsp_response(der).serial_number == leaf.serial_number


# --- (c) job arguments that change business outcomes never come from Redis unchecked ------------
def test_a_planted_expiry_scan_with_as_of_creates_no_notice(api, ctx, test_env, redis_queues):
    api.org("acme")
    api.user("newbie", "acme")
    issued = api.issue("newbie", make_csr()[1])
    assert issued.status == 201
    # a year ahead: the certificate issued today is "expiring within 40 days" as of then
    as_of = (ctx.clock.now() + timedelta(days=340)).isoformat()
    planted = Queue("default", connection=redis_queues).enqueue("workers.jobs.expiry_scan_job", as_of=as_of)
    run_worker_burst(test_env)
    with ctx.sessions() as s:
        notices = s.scalars(select(Notice).where(Notice.serial == issued.json["serial"])).all()
    assert notices == []  # no early email, and no unique notice to block the real one
    assert planted.get_status(refresh=True) == "failed"


# --- (d) unknown or malformed failed jobs are listed, never crash a page -----------------------
class _Gadget:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("true",))


def _plant_failed_gadget(conn: Redis) -> str:
    queue = Queue("default", connection=conn)
    job = queue.enqueue("workers.jobs.sweep_job")
    queue.remove(job)
    queue.failed_job_registry.add(job, exc_string="Traceback ...\nValueError: boom")
    conn.hset(job.key, "data", zlib.compress(pickle.dumps((_Gadget(), None, (), {}))))
    conn.hset(job.key, "meta", pickle.dumps(_Gadget()))
    return job.id


def test_a_gadget_in_the_failed_registry_is_listed_and_its_retry_refused(ctx, redis_queues):
    gadget_id = _plant_failed_gadget(redis_queues)
    listed = json.loads(ca("jobs", "failed", "--json").stdout)
    assert [j["job_id"] for j in listed] == [gadget_id]
    assert listed[0]["function"] is None
    alice = Console(create_app(ctx), make_operator(ctx, "alice"))
    page = alice.get("/console/failures")
    assert page.status_code == 200 and gadget_id in page.text
    retried = alice.post(f"/console/failures/jobs/{gadget_id}/retry", {}, page="/console/failures")
    assert retried.status_code == 409
    assert gadget_id in Queue("default", connection=redis_queues).failed_job_registry.get_job_ids()  # not requeued
    ca("jobs", "failed", "--requeue", "--job", gadget_id, code=1)


def test_an_entry_this_service_wrote_is_still_served_from_redis_by_another_process(ctx, leaf, issuer, issuer_id):
    first = _presigned(ctx)
    body = ocsp_request(leaf, issuer)
    assert _status(first, body) == (ocsp.OCSPCertStatus.GOOD, False)  # signed, MAC'd, in Redis
    second = _presigned(ctx)  # a cold LRU: the Redis entry, MAC and DER checked, saves the signature
    assert _status(second, body) == (ocsp.OCSPCertStatus.GOOD, True)
    value = ctx.redis().get(_key(ctx, issuer_id, leaf))
    ctx.redis().set(_key(ctx, issuer_id, leaf), value[:-1] + bytes([value[-1] ^ 1]), ex=600)  # one bit of the DER
    third = _presigned(ctx)
    assert _status(third, body) == (ocsp.OCSPCertStatus.GOOD, False)  # refused, signed afresh


# --- (b) a revocation kept off the CRL through Redis is noticed, whoever holds the lease -------
def _metric(api, name: str) -> float | None:  # type: ignore[no-untyped-def]
    metrics_collectors._STATE_CACHE.clear()  # the gauges are cached 5 s per process
    text = api.get("/metrics", role=None).content.decode()
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else None


def test_a_revocation_kept_off_the_crl_through_redis_raises_the_alert_and_readyz_says_so(api, ctx, clock, test_env, redis_queues):
    api.org("acme")
    api.user("victim", "acme")
    serial = api.issue("victim", make_csr()[1]).json["serial"]
    # the attacker: suspends the workers, holds the scheduler lease, deletes the queued publication
    redis_queues.set("rq:suspended", 1)
    redis_queues.set("ca-service:scheduler:lease", b"attacker", ex=3600)
    assert api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"}).status == 200
    Queue("crl", connection=redis_queues).empty()
    run_worker_burst(test_env)  # a real worker: suspended, it publishes nothing
    with ctx.sessions() as s:
        assert s.scalars(select(Crl).where(Crl.issuer_id == active_issuer(ctx).id)).all() == []
    ready = api.get("/readyz", role=None)
    assert ready.status == 200 and ready.json["checks"]["crl"] == "ok"  # a moment: nothing to say yet
    assert _metric(api, "ca_crl_revocation_overdue") == 0
    clock.travel(minutes=ctx.settings.crl_overdue_minutes + 1)
    ready = api.get("/readyz", role=None)
    assert ready.json["checks"]["crl"].startswith("a revocation has not been on the CRL for 11 min"), ready.json
    assert ready.status == 200  # reported: login checks do not depend on the CRL
    assert _metric(api, "ca_crl_revocation_overdue") == 1
    assert _metric(api, "ca_crl_unpublished_revocation_seconds") >= 660
    redis_queues.delete("rq:suspended", "ca-service:scheduler:lease")
