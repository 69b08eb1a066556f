"""Pre-signed OCSP responses across the workers of a real gunicorn (issue 16): once a revocation
commits, every worker answers `revoked` within one second, with Redis (pub/sub invalidation, and
the revocation-counter polls) and with Redis down (the polls alone); and with Redis down the
responder keeps answering from the database.

Each worker first caches the `good` answer: the probes come on new connections from several
threads at once, so the three sync workers (one request at a time each) all answer many of them.
Without the invalidation a worker would serve its cached `good` until nextUpdate (an hour), so
these tests fail if any worker's cache is not dropped in time.

Runs in the normal suite (not `-m ha`): in CI both with PostgreSQL + Redis and with the embedded
defaults (SQLite, embedded Redis)."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.support.api import Api
from tests.support.pki import make_csr

WORKERS = 3
PROBES = 24  # requests per round, from 8 threads on new connections
BOUND_SECONDS = 1.0


def _path(cert: x509.Certificate, issuer: x509.Certificate) -> str:
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()  # noqa: S303 - RFC 5019 CertID
    return "/ocsp/" + quote(base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode(), safe="")


def _statuses(url: str) -> list[ocsp.OCSPCertStatus]:
    def one(_: int) -> ocsp.OCSPCertStatus:
        with requests.Session() as fresh:  # a new connection: whichever worker accepts it answers
            r = fresh.get(url, timeout=10, headers={"Connection": "close"})
        assert r.status_code == 200
        resp = ocsp.load_der_ocsp_response(r.content)
        assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        return resp.certificate_status

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(PROBES)))


def _issue(live: Api, login_id: str) -> tuple[x509.Certificate, x509.Certificate]:
    live.org("acme")
    live.user(login_id, "acme")
    r = live.issue(login_id, make_csr()[1])
    assert r.status == 201, r
    chain = x509.load_pem_x509_certificates(r.json["chain_pem"].encode())
    return x509.load_pem_x509_certificate(r.json["certificate_pem"].encode()), chain[0]


def _revoked_everywhere_within_bound(base: str, cert: x509.Certificate, issuer: x509.Certificate, tokens: dict[str, str]) -> None:
    url = base + _path(cert, issuer)
    for _ in range(3):  # warm every worker's cache with `good`
        assert set(_statuses(url)) == {ocsp.OCSPCertStatus.GOOD}
    server = Api(tokens, base_url=base)
    serial = format(cert.serial_number, "x")
    r = server.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"})
    assert r.status == 200, r
    committed = time.monotonic()  # the revocation committed before the response was sent
    last_good = None
    after_bound = 0
    while time.monotonic() - committed < BOUND_SECONDS + 1.0:
        started = time.monotonic()
        statuses = _statuses(url)
        if ocsp.OCSPCertStatus.GOOD in statuses:
            last_good = time.monotonic()
        elif started - committed >= BOUND_SECONDS:
            after_bound += len(statuses)
        assert set(statuses) <= {ocsp.OCSPCertStatus.GOOD, ocsp.OCSPCertStatus.REVOKED}
    stale_for = None if last_good is None else last_good - committed
    assert stale_for is None or stale_for < BOUND_SECONDS, f"a worker still answered good {stale_for:.2f} s after the revocation"
    assert after_bound >= PROBES, "too few probes after the bound to tell"
    assert set(_statuses(url)) == {ocsp.OCSPCertStatus.REVOKED}


def test_every_worker_answers_revoked_within_a_second(live, live_processes, tokens):
    cert, issuer = _issue(live, "alice")
    base = live_processes.start_api(workers=WORKERS, name="ocsp-staleness")
    try:
        _revoked_everywhere_within_bound(base, cert, issuer, tokens)
    finally:
        live_processes.processes["ocsp-staleness"].stop()


def test_with_redis_down_every_worker_answers_from_the_database_and_revoked_within_a_second(live, live_processes, tokens):
    cert, issuer = _issue(live, "bob")
    down = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    base = live_processes.start_api(workers=WORKERS, name="ocsp-redis-down", REDIS_URL=down)
    try:
        _revoked_everywhere_within_bound(base, cert, issuer, tokens)
    finally:
        live_processes.processes["ocsp-redis-down"].stop()
