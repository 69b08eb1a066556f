"""OCSP request parsing and response building, checked with cryptography and the openssl CLI.

Requests are made by `openssl ocsp -reqout`; responses are checked twice by openssl: with
`-reqin req.der -respin resp.der` (signature and delegated responder chain, and the nonce: it
prints "Nonce Verify error" / "WARNING: no nonce in response" otherwise) and with `-issuer
-cert -no_nonce` (openssl matches the response's CertID to the certificate and prints its status).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca_service.pki.hierarchy import build_root, ca_name
from ca_service.pki.ocsp import (
    MalformedOCSPRequest,
    UnsupportedCertIDHash,
    build_error_response,
    build_responder_certificate,
    build_response,
    issuer_hashes,
    parse_request,
)
from ca_service.pki.signer import KeySigner
from tests.support.pki import openssl

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def responder(hierarchy):
    h = hierarchy
    key = KeySigner("responder", ec.generate_private_key(ec.SECP256R1()))
    cert = build_responder_certificate(
        issuer_cert=h.issuing, issuer_key=h.issuing_key, responder_public_key=key.public_key(), subject_cn="Test OCSP",
        serial=99, not_before=NOW - timedelta(minutes=5), not_after=NOW + timedelta(days=30),
    )  # fmt: skip
    h.write("responder.pem", cert)
    return cert, key


def _request(h, leaf, *options: str) -> bytes:
    """`options`: a digest (-sha256) and/or -nonce / -no_nonce; the digest goes before -cert."""
    h.write("leaf.pem", leaf)
    openssl("ocsp", "-issuer", "issuing.pem", *options, "-cert", "leaf.pem", "-reqout", "req.der", cwd=h.dir, check=True)
    return (h.dir / "req.der").read_bytes()


def _respond(h, responder, req, status, *, issuer=None, revoked_at=None, reason=None) -> ocsp.OCSPResponse:
    cert, key = responder
    der = build_response(
        request=req, issuer_cert=issuer or h.issuing, responder_cert=cert, responder_key=key, status=status,
        revoked_at=revoked_at, reason=reason, this_update=NOW, next_update=NOW + timedelta(hours=1),
    )  # fmt: skip
    (h.dir / "resp.der").write_bytes(der)
    return ocsp.load_der_ocsp_response(der)


def _openssl_check(h, *digest: str) -> str:
    """Both openssl checks (module docstring); returns the status output of the second one."""
    first = openssl("ocsp", "-reqin", "req.der", "-respin", "resp.der", "-CAfile", "chain.pem", cwd=h.dir)
    out = first.stdout + first.stderr
    assert first.returncode == 0 and "Response verify OK" in out and "nonce" not in out.lower(), out
    second = openssl("ocsp", "-respin", "resp.der", "-issuer", "issuing.pem", *digest, "-cert", "leaf.pem", "-no_nonce",
                     "-CAfile", "chain.pem", cwd=h.dir)  # fmt: skip
    out = second.stdout + second.stderr
    assert second.returncode == 0 and "Response verify OK" in out, out
    return out


@pytest.mark.parametrize("digest", [(), ("-sha256",), ("-sha512",)])
@pytest.mark.parametrize("nonce", ["-nonce", "-no_nonce"])
def test_good_echoes_certid_and_nonce(hierarchy, responder, digest, nonce):
    h = hierarchy
    leaf = h.leaf()
    req = parse_request(_request(h, leaf, *digest, nonce))
    hash_name = digest[0][1:] if digest else "sha1"
    assert req.serial == leaf.serial_number and req.hash_name == hash_name == req.hash_algorithm.name
    assert (req.issuer_name_hash, req.issuer_key_hash) == issuer_hashes(h.issuing, req.hash_algorithm)
    assert req.ocsp_request.serial_number == leaf.serial_number
    assert (req.nonce is not None and len(req.nonce) == 16) if nonce == "-nonce" else req.nonce is None
    resp = _respond(h, responder, req, "good")
    assert "leaf.pem: good" in _openssl_check(h, *digest)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL and resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert (resp.hash_algorithm.name, resp.issuer_name_hash, resp.issuer_key_hash, resp.serial_number) == (
        hash_name,
        req.issuer_name_hash,
        req.issuer_key_hash,
        leaf.serial_number,
    )
    assert resp.this_update_utc == NOW and resp.next_update_utc == NOW + timedelta(hours=1)
    if nonce == "-nonce":
        extension = resp.extensions.get_extension_for_class(x509.OCSPNonce)
        assert extension.value.nonce == req.nonce and not extension.critical
    else:
        assert len(resp.extensions) == 0


def test_response_signer_fields(hierarchy, responder):
    h = hierarchy
    cert, key = responder
    resp = _respond(h, responder, parse_request(_request(h, h.leaf(), "-nonce")), "good")
    assert resp.responder_name is None  # ResponderID byKey
    spki = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert resp.responder_key_hash == hashlib.sha1(spki).digest()  # noqa: S324 (RFC 6960 KeyHash)
    assert resp.certificates == [cert]
    assert resp.signature_hash_algorithm is not None and resp.signature_hash_algorithm.name == "sha256"
    key.public_key().verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    ("reason", "openssl_text"),
    [
        ("key_compromise", "Reason: keyCompromise"),
        ("cessation_of_operation", "Reason: cessationOfOperation"),
        ("privilege_withdrawn", "Reason: (UNKNOWN)"),  # OpenSSL 3.0's reason table stops at removeFromCRL (8); 9 is right
        ("unspecified", None),
    ],
)
def test_revoked_with_reason(hierarchy, responder, reason, openssl_text):
    h = hierarchy
    leaf = h.leaf()
    at = datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)
    resp = _respond(h, responder, parse_request(_request(h, leaf, "-nonce")), "revoked", revoked_at=at, reason=reason)
    out = _openssl_check(h)
    assert "leaf.pem: revoked" in out and "Revocation Time: Nov 20 01:02:03 2026 GMT" in out, out
    assert resp.certificate_status == ocsp.OCSPCertStatus.REVOKED and resp.revocation_time_utc == at
    if openssl_text:
        assert openssl_text in out and resp.revocation_reason == getattr(x509.ReasonFlags, reason)
    else:
        assert "Reason:" not in out and resp.revocation_reason is None  # unspecified: no revocationReason


def test_unknown_also_for_an_issuer_we_do_not_hold(hierarchy, responder):
    h = hierarchy
    resp = _respond(h, responder, parse_request(_request(h, h.leaf(), "-nonce")), "unknown")
    assert "leaf.pem: unknown" in _openssl_check(h)
    assert resp.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # A CertID of somebody else's CA: echoed as it came, `unknown`, still signed by our responder.
    foreign = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(secrets.token_bytes(32), secrets.token_bytes(32), 12345, hashes.SHA256())
        .add_extension(x509.OCSPNonce(secrets.token_bytes(20)), critical=False)
    )
    req_der = foreign.build().public_bytes(serialization.Encoding.DER)
    (h.dir / "req.der").write_bytes(req_der)
    req = parse_request(req_der)
    resp = _respond(h, responder, req, "unknown")
    # -VAfile: a client cannot accept it through the chain (openssl: "root ca not trusted"), as our
    # delegated responder is not authorised for that CA (RFC 6960 §4.2.2.2); the signature is good.
    out = openssl("ocsp", "-reqin", "req.der", "-respin", "resp.der", "-VAfile", "responder.pem", "-resp_text", cwd=h.dir)
    assert out.returncode == 0 and "Response verify OK" in out.stdout + out.stderr and "Cert Status: unknown" in out.stdout
    assert (resp.issuer_name_hash, resp.issuer_key_hash, resp.serial_number) == (req.issuer_name_hash, req.issuer_key_hash, 12345)
    with pytest.raises(ValueError, match="does not name"):
        _respond(h, responder, req, "good")  # never vouch for a certificate of a CA we are not


def test_ca_may_sign_its_own_responses(hierarchy):
    h = hierarchy
    _respond(h, (h.issuing, h.issuing_key), parse_request(_request(h, h.leaf(), "-nonce")), "good")
    assert "leaf.pem: good" in _openssl_check(h)


def test_build_response_refuses_inconsistent_input(hierarchy, responder):
    h = hierarchy
    leaf = h.leaf()
    req = parse_request(_request(h, leaf, "-no_nonce"))
    cert, key = responder
    with pytest.raises(ValueError, match="revoked_at"):
        _respond(h, responder, req, "revoked", reason="key_compromise")
    with pytest.raises(ValueError, match="unknown revocation reason"):
        _respond(h, responder, req, "revoked", revoked_at=NOW, reason="keyCompromise")
    with pytest.raises(ValueError, match="responder_key"):
        _respond(h, (cert, KeySigner("other", ec.generate_private_key(ec.SECP256R1()))), req, "good")
    with pytest.raises(ValueError, match="not issued by"):
        _respond(h, (h.root, h.root_key), req, "good")
    other = dataclasses.replace(req, serial=req.serial + 1)
    args = dict(request=other, issuer_cert=h.issuing, responder_cert=cert, responder_key=key, status="good", revoked_at=None,
                reason=None, this_update=NOW, next_update=NOW + timedelta(hours=1))  # fmt: skip
    with pytest.raises(ValueError, match="cert_for_request"):
        build_response(**args, cert_for_request=leaf)
    assert build_response(**{**args, "request": req}, cert_for_request=leaf)


def test_malformed_and_unsupported_requests(hierarchy):
    h = hierarchy
    leaf = h.leaf()
    good = _request(h, leaf, "-nonce")
    for junk in (b"", b"garbage", b"\x30\x03\x02\x01\x01", good[:-5], good + b"\x00", b"\x30\x82\x27\x10" + bytes(10_000)):
        with pytest.raises(MalformedOCSPRequest):
            parse_request(junk)
    openssl("ocsp", "-issuer", "issuing.pem", "-serial", "5", "-serial", "6", "-reqout", "two.der", cwd=h.dir, check=True)
    with pytest.raises(MalformedOCSPRequest, match="more than one"):
        parse_request((h.dir / "two.der").read_bytes())
    for digest in ("-md5", "-sha3-256"):
        with pytest.raises(UnsupportedCertIDHash):
            parse_request(_request(h, leaf, digest, "-no_nonce"))
    for nonce in (b"", bytes(33)):
        builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, h.issuing, hashes.SHA256())
        der = builder.add_extension(x509.OCSPNonce(nonce), critical=False).build().public_bytes(serialization.Encoding.DER)
        with pytest.raises(MalformedOCSPRequest, match="nonce"):
            parse_request(der)
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, h.issuing, hashes.SHA256())
    assert parse_request(builder.build().public_bytes(serialization.Encoding.DER)).nonce is None


@pytest.mark.parametrize(
    ("status", "expected", "openssl_text"),
    [
        ("malformed_request", ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformedrequest (1)"),
        ("internal_error", ocsp.OCSPResponseStatus.INTERNAL_ERROR, "internalerror (2)"),
        ("try_later", ocsp.OCSPResponseStatus.TRY_LATER, "trylater (3)"),
        ("unauthorized", ocsp.OCSPResponseStatus.UNAUTHORIZED, "unauthorized (6)"),
        ("malformedRequest", ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformedrequest (1)"),
    ],
)
def test_error_responses(hierarchy, status, expected, openssl_text):
    der = build_error_response(status)
    assert ocsp.load_der_ocsp_response(der).response_status == expected
    (hierarchy.dir / "err.der").write_bytes(der)
    out = openssl("ocsp", "-respin", "err.der", "-resp_text", "-noverify", cwd=hierarchy.dir)
    assert openssl_text in (out.stdout + out.stderr).lower()
    with pytest.raises(ValueError):
        build_error_response("successful")


def test_issuer_hashes_match_rfc6960_for_ec_and_rsa(hierarchy):
    issuing = hierarchy.issuing
    point = issuing.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    for algorithm in (hashes.SHA1(), hashes.SHA256(), hashes.SHA384()):  # noqa: S303 (SHA-1: the usual CertID hash)
        name = hashlib.new(algorithm.name, issuing.subject.public_bytes()).digest()
        assert issuer_hashes(issuing, algorithm) == (name, hashlib.new(algorithm.name, point).digest())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = build_root(
        key=KeySigner("rsa", key), subject=ca_name("B", "RSA"), serial=3, not_before=NOW, not_after=NOW + timedelta(days=1)
    )
    pkcs1 = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert issuer_hashes(ca, hashes.SHA256())[1] == hashlib.sha256(pkcs1).digest()
    with pytest.raises(ValueError):
        issuer_hashes(ca, hashes.SHA3_256())


def test_responder_certificate_profile(hierarchy, responder):
    h = hierarchy
    cert, key = responder
    assert cert.version == x509.Version.v3 and cert.serial_number == 99
    assert cert.issuer == h.issuing.subject
    assert cert.subject == x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Bank"), x509.NameAttribute(NameOID.COMMON_NAME, "Test OCSP")]
    )
    assert cert.not_valid_before_utc == NOW - timedelta(minutes=5) and cert.not_valid_after_utc == NOW + timedelta(days=30)
    assert cert.public_key() == key.public_key()
    ext = cert.extensions
    assert len(ext) == 6
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca and bc.value.path_length is None
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not any(
        getattr(ku.value, name)
        for name in ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
    )
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical and list(eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    assert not ext.get_extension_for_class(x509.OCSPNoCheck).critical
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert not ski.critical and ski.value == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier)
    issuer_ski = h.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert not aki.critical and aki.value.key_identifier == issuer_ski.digest and aki.value.authority_cert_issuer is None
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    cert.verify_directly_issued_by(h.issuing)
    out = openssl("verify", "-purpose", "ocsphelper", "-CAfile", "chain.pem", "responder.pem", cwd=h.dir)
    assert out.returncode == 0 and "responder.pem: OK" in out.stdout, out.stdout + out.stderr
    with pytest.raises(ValueError, match="not the key"):
        build_responder_certificate(
            issuer_cert=h.issuing, issuer_key=h.root_key, responder_public_key=key.public_key(), subject_cn="x",
            serial=1, not_before=NOW, not_after=NOW + timedelta(days=1),
        )  # fmt: skip
