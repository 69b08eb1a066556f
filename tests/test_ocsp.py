"""The OCSP responder in-process (DESIGN §3, issue 5): statuses from the database, SHA-1 and
SHA-256 CertIDs, nonce, malformed requests, GET encodings and HTTP caching, the Redis cache and
its invalidation, Redis down, the delegated responder certificate profile, and its rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, ObjectIdentifier
from sqlalchemy import select, update

from ca_service import metrics
from ca_service.context import ServiceContext
from ca_service.per_process import Lru
from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.authority.hierarchy import active_issuer
from ca_service.services.ocsp import cache as ocsp_cache
from ca_service.services.ocsp import responder as ocsp_responder
from ca_service.services.ocsp.state import OcspState
from ca_service.store.models import Certificate, CertificateAuthority

OCSP_NOCHECK = ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")
MIME = "application/ocsp-response"


@pytest.fixture(autouse=True)
def _forget_responders(ctx: ServiceContext) -> None:
    """conftest deletes responder rows between tests under this long-lived process (production
    never deletes them): drop the per-process choice so each test starts from the database."""
    ctx.local(ocsp_signer.ResponderCache).responders.clear()
    state = ctx.local(OcspState)
    state.issuers = None
    state.local.clear()


# --- helpers (also used by tests/e2e/test_ocsp_openssl.py) -------------------------------------
def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, algorithm=None, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA1())  # noqa: S303 - the RFC 5019 CertID
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def verify_response(der: bytes, issuer: x509.Certificate, at: datetime) -> ocsp.OCSPResponse:
    """Check what a relying party checks (RFC 6960 §3.2, §4.2.2.2): signed by a responder
    certificate that the issuer issued for OCSPSigning, valid at `at`, and a current response."""
    resp = ocsp.load_der_ocsp_response(der)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert len(resp.certificates) == 1
    responder = resp.certificates[0]
    responder.verify_directly_issued_by(issuer)
    eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in eku
    assert responder.not_valid_before_utc <= at < responder.not_valid_after_utc
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(resp.signature_hash_algorithm))
    assert resp.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(key).digest
    assert resp.this_update_utc <= at < resp.next_update_utc
    return resp


def post(api, body: bytes, content_type: str = "application/ocsp-request"):
    return api.post("/ocsp", role=None, data=body, headers={"Content-Type": content_type})


def revoke_in_db(ctx: ServiceContext, cert: x509.Certificate, reason: str, when: datetime) -> None:
    """A revocation as the lifecycle service records it, without the cache invalidation."""
    with ctx.engine.begin() as conn:
        conn.execute(
            update(Certificate)
            .where(Certificate.serial == format(cert.serial_number, "x"))
            .values(revoked_at=when, revocation_reason=reason, current_login_id=None)
        )


def now() -> datetime:
    return datetime.now(UTC)


# --- statuses ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])  # noqa: S303
def test_good_for_an_issued_certificate_with_sha1_and_sha256_certids(api, ctx, leaf, issuer, algorithm):
    r = post(api, ocsp_request(leaf, issuer, algorithm))
    assert r.status == 200 and r.headers["Content-Type"] == MIME
    resp = verify_response(r.content, issuer, now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert resp.serial_number == leaf.serial_number
    assert resp.hash_algorithm.name == algorithm.name
    assert resp.next_update_utc - resp.this_update_utc == timedelta(minutes=ctx.settings.ocsp_validity_minutes)


def test_nonce_is_echoed_and_nonce_responses_are_signed_fresh(api, leaf, issuer):
    first = post(api, ocsp_request(leaf, issuer, nonce=b"\x01" * 16))
    second = post(api, ocsp_request(leaf, issuer, nonce=b"\x02" * 16))
    nonces = []
    for r in (first, second):
        resp = verify_response(r.content, issuer, now())
        assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
        nonces.append(resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce)
    assert nonces == [b"\x01" * 16, b"\x02" * 16]


def test_unknown_serial_and_unknown_issuer_give_unknown(api, ctx, leaf, issuer):
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name.from_rfc4514_string("CN=Someone Else CA")
    stranger = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(stranger_key.public_key())
        .serial_number(leaf.serial_number)  # our leaf's serial, but another issuer
        .not_valid_before(now() - timedelta(days=1))
        .not_valid_after(now() + timedelta(days=1))
        .sign(stranger_key, hashes.SHA256())
    )
    ours = ocsp.load_der_ocsp_request(ocsp_request(leaf, issuer, hashes.SHA256()))  # our issuer's CertID hashes
    never_issued = int.from_bytes(os.urandom(16), "big") | 1 << 130
    unknown_serial = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        ours.issuer_name_hash, ours.issuer_key_hash, never_issued, hashes.SHA256()
    )
    for body in (
        unknown_serial.build().public_bytes(serialization.Encoding.DER),
        ocsp_request(stranger, stranger, hashes.SHA256()),
    ):
        r = post(api, body)
        assert r.status == 200
        resp = verify_response(r.content, issuer, now())
        assert resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # The first was matched to our issuing CA (its answer is cached under it), the second was not.
    issuer_id = active_issuer(ctx).id
    assert ctx.redis().exists(ocsp_cache.cache_key(ctx, issuer_id, format(never_issued, "x"), "sha256"))
    assert not ctx.redis().exists(ocsp_cache.cache_key(ctx, issuer_id, format(leaf.serial_number, "x"), "sha256"))


def test_good_after_expiry_and_revoked_with_time_and_reason(api, ctx, leaf, issuer, clock):
    clock.travel(days=400)  # the leaf has expired: still `good` (RFC 6960 practice)
    der = post(api, ocsp_request(leaf, issuer)).content
    resp = verify_response(der, issuer, clock.now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    clock.reset()
    revoked_at = now() - timedelta(minutes=3)  # microseconds, as the service records it
    revoke_in_db(ctx, leaf, "key_compromise", revoked_at)
    resp = verify_response(post(api, ocsp_request(leaf, issuer, hashes.SHA256())).content, issuer, now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_time_utc == revoked_at.replace(microsecond=0)
    assert resp.revocation_reason == x509.ReasonFlags.key_compromise


@pytest.mark.parametrize(
    "body",
    [b"", b"garbage", b"\x30\x03\x02\x01\x00", b"\x30" + b"\xff" * 20, os.urandom(300)],
    ids=["empty", "text", "wrong-structure", "bad-length", "random"],
)
def test_garbage_gives_malformed_request_not_an_http_error(api, body):
    r = post(api, body)
    assert r.status == 200 and r.headers["Content-Type"] == MIME
    assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_post_with_another_content_type_is_still_answered(api, leaf, issuer):
    r = post(api, ocsp_request(leaf, issuer), content_type="application/octet-stream")
    assert verify_response(r.content, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD


# --- GET ----------------------------------------------------------------------------------------
def test_get_accepts_standard_and_url_safe_base64_percent_encoded(api, leaf, issuer):
    der = ocsp_request(leaf, issuer, hashes.SHA256())
    standard = base64.b64encode(der).decode()
    forms = [quote(standard, safe=""), standard.replace("/", "%2F"), base64.urlsafe_b64encode(der).decode().rstrip("=")]
    for form in forms:
        r = api.get("/ocsp/" + form, role=None)
        assert r.status == 200 and r.headers["Content-Type"] == MIME, form
        assert verify_response(r.content, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_get_with_slashes_in_standard_base64(api, leaf, issuer):
    """Standard base64 may contain "//": the router must not merge or redirect it."""
    for i in range(10_000):
        der = ocsp_request(leaf, issuer, nonce=i.to_bytes(4, "big") * 4)
        if "//" in base64.b64encode(der).decode():
            break
    r = api.get("/ocsp/" + base64.b64encode(der).decode(), role=None)
    assert r.status == 200, r
    assert verify_response(r.content, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_get_has_rfc5019_caching_headers_and_etag(api, leaf, issuer):
    path = "/ocsp/" + quote(base64.b64encode(ocsp_request(leaf, issuer)).decode(), safe="")
    r = api.get(path, role=None)
    cache_control = {p.strip() for p in r.headers["Cache-Control"].split(",")}
    max_age = next(int(p.split("=")[1]) for p in cache_control if p.startswith("max-age="))
    assert "public" in cache_control and 0 < max_age <= 3600
    assert r.headers["ETag"] and r.headers["Last-Modified"] and r.headers["Expires"]
    again = api.get(path, role=None, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status == 304 and again.content == b"" and again.headers["ETag"] == r.headers["ETag"]
    assert api.get(path, role=None, headers={"If-Modified-Since": r.headers["Last-Modified"]}).status == 304
    older = api.get(path, role=None, headers={"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert older.status == 200 and older.content
    assert api.get(path, role=None, headers={"If-None-Match": '"another"'}).status == 200
    with_nonce = api.get("/ocsp/" + base64.urlsafe_b64encode(ocsp_request(leaf, issuer, nonce=b"n" * 16)).decode(), role=None)
    assert with_nonce.headers["Cache-Control"] == "no-store" and "ETag" not in with_nonce.headers


@pytest.mark.parametrize("encoded", ["not*base64!", "AAAA", "%%%", base64.b64encode(b"garbage").decode()])
def test_get_garbage_gives_malformed_request(api, encoded):
    r = api.get("/ocsp/" + encoded, role=None)
    assert r.status == 200
    assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert r.headers["Cache-Control"] == "no-store"


# --- the response cache -----------------------------------------------------------------------
def _hits() -> float:
    return metrics.OCSP_CACHE.labels("hit")._value.get()


def test_second_request_is_served_from_the_cache_and_revocation_invalidates_it(api, ctx, leaf, issuer):
    body = ocsp_request(leaf, issuer, hashes.SHA256())
    first = post(api, body).content
    hits = _hits()
    assert post(api, body).content == first  # same signed bytes: no new signature
    assert _hits() == hits + 1
    serial = format(leaf.serial_number, "x")
    assert ctx.redis().exists(ocsp_cache.cache_key(ctx, active_issuer(ctx).id, serial, "sha256"))
    r = api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "affiliation_changed"})
    assert r.status == 200, r
    assert not ctx.redis().exists(ocsp_cache.cache_key(ctx, active_issuer(ctx).id, serial, "sha256"))
    resp = verify_response(post(api, body).content, issuer, now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason == x509.ReasonFlags.affiliation_changed


def test_a_cached_good_is_never_served_after_a_revocation_even_without_invalidation(api, ctx, leaf, issuer):
    body = ocsp_request(leaf, issuer)
    assert verify_response(post(api, body).content, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD
    revoke_in_db(ctx, leaf, "unspecified", now().replace(microsecond=0))  # and Redis never told
    resp = verify_response(post(api, body).content, issuer, now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_a_response_cached_in_process_is_served_without_redis_and_without_signing(ctx, leaf, issuer):
    down = dataclasses.replace(ctx.settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    dead = ServiceContext(settings=down, clock=ctx.clock, engine=ctx.engine, sessions=ctx.sessions, key_backend=ctx.keys)
    first = ocsp_responder.answer(dead, ocsp_request(leaf, issuer))
    hits = _hits()
    again = ocsp_responder.answer(dead, ocsp_request(leaf, issuer))
    assert again.from_cache and again.der == first.der and _hits() == hits + 1  # the same signed bytes
    revoke_in_db(ctx, leaf, "key_compromise", now().replace(microsecond=0))  # no invalidation reaches this cache
    resp = verify_response(ocsp_responder.answer(dead, ocsp_request(leaf, issuer)).der, issuer, now())
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_a_cached_response_dated_in_the_clocks_future_is_not_served(api, leaf, issuer, clock):
    body = ocsp_request(leaf, issuer)
    clock.travel(hours=2)
    ahead = verify_response(post(api, body).content, issuer, clock.now())
    clock.reset()
    resp = verify_response(post(api, body).content, issuer, clock.now())  # fails if the +2 h answer came back
    assert resp.this_update_utc < ahead.this_update_utc


def test_the_in_process_cache_is_a_bounded_lru():
    lru = Lru[str, ocsp_cache.CachedResponse](2)  # the class of OcspState.local
    entry = ocsp_cache.CachedResponse("good", datetime.now(UTC), b"der")
    lru.put("a", entry)
    lru.put("b", entry)
    assert lru.get("a") is entry  # now the most recently used
    lru.put("c", entry)
    assert lru.get("b") is None and lru.get("a") is entry and lru.get("c") is entry
    lru.drop(["a", "zz"])
    assert lru.get("a") is None and len(lru.entries) == 1


def test_redis_down_answers_from_the_database(ctx, leaf, issuer):
    down = dataclasses.replace(ctx.settings, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    dead = ServiceContext(settings=down, clock=ctx.clock, engine=ctx.engine, sessions=ctx.sessions, key_backend=ctx.keys)
    for _ in range(2):
        answer = ocsp_responder.answer(dead, ocsp_request(leaf, issuer))
        assert verify_response(answer.der, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD
    ocsp_cache.invalidate(dead, 1, "ab")  # never raises


def test_a_dropped_database_connection_is_replaced(ctx, leaf, issuer):
    if not ctx.is_postgres:
        pytest.skip("PostgreSQL only: the held autocommit read connection")
    body = ocsp_request(leaf, issuer, nonce=b"d" * 16)
    assert verify_response(ocsp_responder.answer(ctx, body).der, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD
    held = ctx.hot_reader.conn
    pid = held.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with ctx.engine.connect() as admin:
        assert admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()
    answer = ocsp_responder.answer(ctx, body)  # the read fails once, reconnects, answers
    assert verify_response(answer.der, issuer, now()).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert ctx.hot_reader.conn is not held


# --- the delegated responder certificate ------------------------------------------------------
def test_responder_certificate_profile(api, ctx, leaf, issuer):
    resp = verify_response(post(api, ocsp_request(leaf, issuer)).content, issuer, now())
    cert = resp.certificates[0]
    ext = cert.extensions
    assert cert.issuer == issuer.subject
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign and not ku.value.crl_sign
    assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert ext.get_extension_for_oid(OCSP_NOCHECK).value is not None
    issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == issuer_ski
    assert ExtensionOID.SUBJECT_KEY_IDENTIFIER in {e.oid for e in ext}
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=30) <= lifetime <= timedelta(days=30, minutes=10)
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    with ctx.sessions() as s:
        row = s.scalars(select(CertificateAuthority).where(CertificateAuthority.serial == format(cert.serial_number, "x"))).one()
    assert row.kind == "ocsp" and row.parent_id == active_issuer(ctx).id and row.active
    key_file = ctx.settings.keys_dir / f"{row.key_ref}.key.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")  # encrypted at rest
    assert key_file.stat().st_mode & 0o077 == 0


def test_rotation_before_expiry_and_responses_verify_across_it(api, ctx, leaf, issuer, clock):
    body = ocsp_request(leaf, issuer)
    before = verify_response(post(api, body).content, issuer, now())
    old = before.certificates[0]
    assert ocsp_signer.ensure_responder(ctx).created is False  # fresh: nothing to do
    clock.travel(days=11)
    assert ocsp_signer.ensure_responder(ctx).created is False  # 19 of 30 days left
    clock.travel(days=14)  # 25 days in: 5 left, under a third of the lifetime
    assert old.not_valid_after_utc > clock.now() + timedelta(minutes=10)  # the old one has not expired yet
    der = post(api, body).content
    pre = verify_response(der, issuer, clock.now())  # signed by the old one, at the moved time
    assert pre.certificates[0].serial_number == old.serial_number
    result = ocsp_signer.ensure_responder(ctx)
    assert result.created and ocsp_signer.ensure_responder(ctx).created is False
    with ctx.sessions() as s:
        rows = s.scalars(select(CertificateAuthority).where(CertificateAuthority.kind == "ocsp")).all()
    assert {r.serial: r.active for r in rows} == {format(old.serial_number, "x"): False, result.serial: True}
    # What the old responder signed still verifies; new responses come from the new responder
    # (a process re-reads its due responder at most a second later).
    der = post(api, body).content
    verify_response(der, issuer, clock.now())
    time.sleep(ocsp_signer.DUE_REFRESH_SECONDS)
    der = post(api, ocsp_request(leaf, issuer, nonce=b"r" * 16)).content
    after = verify_response(der, issuer, clock.now())
    assert format(after.certificates[0].serial_number, "x") == result.serial
    assert after.certificates[0].not_valid_after_utc > old.not_valid_after_utc


def test_openapi_describes_ocsp_with_binary_bodies(api):
    doc = api.get("/openapi.json", role=None).json
    post_op = doc["paths"]["/ocsp"]["post"]
    assert "application/ocsp-request" in post_op["requestBody"]["content"]
    assert MIME in post_op["responses"]["200"]["content"]
    assert MIME in doc["paths"]["/ocsp/{encoded}"]["get"]["responses"]["200"]["content"]


def test_rotation_job_and_cli_are_idempotent(ctx, test_env):
    from ca_service.services.background.jobs import rotate_ocsp_responders_job
    from tests.support.live import ca_service_argv

    first = rotate_ocsp_responders_job()
    assert [r["created"] for r in first] == [True]
    proc = subprocess.run([*ca_service_argv("ocsp", "rotate", "--json")], env=test_env.env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert [(r["serial"], r["created"]) for r in again] == [(first[0]["serial"], False)]
