"""EST (RFC 7030) and enrolment codes through the in-process API (issue 23, DESIGN §4c)."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ca_service.api.app import create_app
from ca_service.services import auth_blocks
from tests.support.api import Api
from tests.support.pki import make_csr, openssl

EST = "/.well-known/est"


def basic(login_id: str, code: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login_id}:{code}".encode()).decode()}


def csr_b64(key=None, **kw) -> tuple[object, bytes]:
    key, pem = make_csr(key, **kw)
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    return key, base64.b64encode(der)


def mint(api: Api, login_id: str, role: str = "frontend", **body) -> str:
    r = api.post(f"/v1/users/{login_id}/enrolment-codes", role=role, json=body)
    assert r.status == 201, r
    return r.json["code"]


def enrol(api: Api, login_id: str, code: str, body: bytes, **headers: str):
    return api.post(
        f"{EST}/simpleenroll", role=None, data=body,
        headers={**basic(login_id, code), "Content-Type": "application/pkcs10", **headers},
    )  # fmt: skip


def certs_of(resp_body: bytes) -> list[x509.Certificate]:
    return pkcs7.load_der_pkcs7_certificates(base64.b64decode(resp_body))


def clear_auth_throttle(ctx) -> None:
    """Forget the bad-credential counts: every request of the tests comes from 127.0.0.1."""
    conn = ctx.redis()
    for key in conn.scan_iter("ca:auth-failures:*"):
        conn.delete(key)
    conn.delete(auth_blocks.INDEX)
    with ctx.auth_blocks.lock:
        ctx.auth_blocks.blocked.clear()


@pytest.fixture(autouse=True)
def fresh_throttle(ctx) -> Iterator[None]:
    clear_auth_throttle(ctx)
    yield
    clear_auth_throttle(ctx)


@pytest.fixture
def alice(api: Api) -> Api:
    api.org("acme")
    api.user("alice", "acme")
    return api


def test_code_format_and_enrolment_gives_the_login_ids_certificate(alice, issuer):
    r = alice.post("/v1/users/alice/enrolment-codes", json={})
    assert r.status == 201, r
    code = r.json["code"]
    assert r.json["login_id"] == "alice" and r.json["expires_at"].endswith("Z")
    assert len(code) == 19 and [len(p) for p in code.split("-")] == [4, 4, 4, 4]
    key, body = csr_b64()
    r = enrol(alice, "alice", code, body)
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/pkcs7-mime")
    assert "smime-type=certs-only" in r.headers["Content-Type"]
    assert r.headers["Content-Transfer-Encoding"] == "base64"
    assert b"\n" not in r.content  # one line: strongSwan's decoder does not skip line breaks
    [cert] = certs_of(r.content)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.issuer == issuer.subject
    # the same certificate the REST API knows, current for alice
    user = alice.get("/v1/users/alice").json
    assert user["current_certificate"]["serial"] == format(cert.serial_number, "x")


def test_code_is_forgiving_about_case_hyphens_and_ambiguous_letters(alice):
    code = mint(alice, "alice")
    sloppy = code.replace("-", "").lower().replace("0", "o").replace("1", "l")
    r = enrol(alice, "alice", sloppy, csr_b64()[1])
    assert r.status == 200, r


def test_body_encodings_accepted(alice):
    """base64 on one line (strongSwan), wrapped base64 (CRLF), PEM and raw DER."""
    for login in ("b64", "wrapped", "pem", "der"):
        alice.user(login, "acme")
    for login in ("b64", "wrapped", "pem", "der"):
        _key, pem = make_csr()  # a fresh key each: key reuse is refused
        der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
        body = {
            "b64": base64.b64encode(der),
            "wrapped": base64.encodebytes(der).replace(b"\n", b"\r\n"),
            "pem": pem.encode(),
            "der": der,
        }[login]
        r = enrol(alice, login, mint(alice, login), body)
        assert r.status == 200, (login, r)


def test_cacerts_holds_issuing_and_root(api, issuer, tmp_path):
    r = api.get(f"{EST}/cacerts", role=None)
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "application/pkcs7-mime"
    certs = certs_of(r.content)  # a SET OF in DER: no order to rely on
    assert issuer in certs and len(certs) == 2
    [root] = [c for c in certs if c != issuer]
    assert root.subject == root.issuer == issuer.issuer  # the root, self-signed, issuing CA's parent
    (tmp_path / "c.p7").write_bytes(base64.b64decode(r.content))
    out = openssl("pkcs7", "-inform", "DER", "-in", str(tmp_path / "c.p7"), "-print_certs", check=True).stdout
    assert out.count("BEGIN CERTIFICATE") == 2


def test_csrattrs_lists_p256_first(api, tmp_path):
    r = api.get(f"{EST}/csrattrs", role=None)
    assert r.status == 200 and r.headers["Content-Type"] == "application/csrattrs"
    (tmp_path / "a.der").write_bytes(base64.b64decode(r.content))
    out = openssl("asn1parse", "-inform", "DER", "-in", str(tmp_path / "a.der"), check=True).stdout
    assert out.index("prime256v1") < out.index("secp384r1") < out.index("rsaEncryption")


def test_renewal_info(alice, clock):
    code = mint(alice, "alice")
    r = enrol(alice, "alice", code, csr_b64()[1])
    [cert] = certs_of(r.content)
    r = alice.get(f"{EST}/renewal-info/{format(cert.serial_number, 'x')}", role=None)
    assert r.status == 200, r
    window = r.json["suggestedWindow"]
    not_after = cert.not_valid_after_utc
    assert window["start"] == (not_after - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert window["end"] == (not_after - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert alice.get(f"{EST}/renewal-info/abcdef", role=None).code == "certificate-not-found"


def test_unauthenticated_gets_basic_challenge(alice):
    r = alice.post(f"{EST}/simpleenroll", role=None, data=csr_b64()[1])
    assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="ca-service EST"'
    assert r.headers["Content-Type"] == "application/problem+json"


def _trusting_api(ctx, tokens) -> Api:
    """The in-process app with 127.0.0.1 (the test client's address) as the trusted proxy."""
    trusting = dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, trusted_proxies=("127.0.0.1",)))
    return Api(tokens, flask_client=create_app(trusting).test_client())


def reenrol(api: Api, cert: x509.Certificate | None, body: bytes):
    headers = {"Content-Type": "application/pkcs10"}
    if cert is not None:
        headers["X-SSL-Client-Cert"] = quote(cert.public_bytes(serialization.Encoding.PEM).decode())
    return api.post(f"{EST}/simplereenroll", role=None, data=body, headers=headers)


def test_simplereenroll_renews_in_the_window(alice, ctx, tokens, clock):
    [old] = certs_of(enrol(alice, "alice", mint(alice, "alice"), csr_b64()[1]).content)
    proxy = _trusting_api(ctx, tokens)
    r = reenrol(proxy, old, csr_b64()[1])
    assert r.status == 409 and r.code == "renewal-not-open", r
    clock.travel(days=330)
    r = reenrol(proxy, old, csr_b64()[1])
    assert r.status == 200, r
    [new] = certs_of(r.content)
    assert new.subject == old.subject and new.serial_number != old.serial_number
    old_view = alice.get(f"/v1/certificates/{format(old.serial_number, 'x')}").json
    assert old_view["revocation_reason"] == "superseded"
    assert old_view["superseded_by"] == format(new.serial_number, "x")


def test_enrolment_code_endpoint_in_openapi(api):
    doc = api.get("/openapi.json", role=None).json
    op = doc["paths"]["/v1/users/{login_id}/enrolment-codes"]["post"]
    assert "201" in op["responses"] and "login-method-not-certificate" in op["responses"]["409"]["description"]
