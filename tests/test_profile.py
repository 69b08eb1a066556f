"""The client-certificate profile of DESIGN §3, asserted field by field on an issued certificate,
verified with `openssl verify -purpose sslclient` and linted with pkilint (RFC 5280)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ca_service.pki.dates import add_months
from tests.support.pki import make_csr, new_key, openssl, pkilint


@pytest.fixture
def issued(api, tmp_path):
    api.org("acme", name="Acme Co")
    api.user("alice", "acme")
    key, csr = make_csr(new_key("ec256"), cn="mallory", extensions=True)
    before = datetime.now(UTC).replace(microsecond=0)
    r = api.issue("alice", csr)
    assert r.status == 201, r
    (tmp_path / "leaf.pem").write_text(r.json["certificate_pem"])
    (tmp_path / "chain.pem").write_text(r.json["chain_pem"])
    return r.json, x509.load_pem_x509_certificate(r.json["certificate_pem"].encode()), key, before


def test_subject_is_built_by_the_ca_not_copied_from_the_csr(issued):
    _body, cert, _key, _ = issued
    attrs = {a.oid: a.value for a in cert.subject}
    assert attrs == {
        NameOID.COMMON_NAME: "alice",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "acme",
        NameOID.ORGANIZATION_NAME: "Test Bank",
    }
    assert "mallory" not in cert.subject.rfc4514_string() and "Evil" not in cert.subject.rfc4514_string()


def test_extensions_are_exactly_the_profile(issued, ctx):
    _body, cert, key, _ = issued
    ext = cert.extensions
    oids = {e.oid for e in ext}
    assert x509.SubjectAlternativeName.oid not in oids  # CSR extensions ignored
    bc = ext.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not (ku.value.key_cert_sign or ku.value.crl_sign or ku.value.key_encipherment or ku.value.content_commitment)
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH] and not eku.critical
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    from ca_service.services.authority.hierarchy import active_issuer

    issuer = active_issuer(ctx)
    issuer_ski = issuer.context.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == issuer_ski.digest
    base = ctx.settings.public_base_url
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name] == [f"{base}/crl/{issuer.name}.crl"]
    aia = {(d.access_method, d.access_location.value) for d in ext.get_extension_for_class(x509.AuthorityInformationAccess).value}
    assert aia == {
        (AuthorityInformationAccessOID.OCSP, f"{base}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{base}/ca/{issuer.name}.crt"),
    }
    assert len(oids) == 7


def test_serial_validity_and_version(issued):
    body, cert, _key, before = issued
    assert cert.version == x509.Version.v3
    assert 0 < cert.serial_number < 2**159 and body["serial"] == format(cert.serial_number, "x")
    issued_at = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= issued_at <= datetime.now(UTC)
    assert cert.not_valid_before_utc == issued_at - timedelta(minutes=5)  # clock-skew backdate
    assert cert.not_valid_after_utc == add_months(issued_at, 12)  # one calendar year (R5)
    assert body["fingerprint_sha256"] == cert.fingerprint(hashes.SHA256()).hex()
    assert body["days_remaining"] in (365, 366)


def test_leap_day_plus_one_year_is_february_28():
    assert add_months(datetime(2028, 2, 29, 10, 30, tzinfo=UTC), 12) == datetime(2029, 2, 28, 10, 30, tzinfo=UTC)
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)


def test_openssl_verifies_for_client_auth(issued, tmp_path):
    proc = openssl("verify", "-purpose", "sslclient", "-CAfile", "chain.pem", "leaf.pem", cwd=tmp_path)
    assert proc.returncode == 0 and "leaf.pem: OK" in proc.stdout, proc.stdout + proc.stderr
    wrong = openssl("verify", "-purpose", "sslserver", "-CAfile", "chain.pem", "leaf.pem", cwd=tmp_path)
    assert wrong.returncode != 0  # clientAuth only


@pytest.mark.parametrize("kind", ["ec256", "ec384", "rsa2048", "rsa4096"])
def test_accepted_key_types_issue_and_lint_clean(api, tmp_path, kind):
    api.org("acme")
    api.user("bob", "acme")
    r = api.issue("bob", make_csr(new_key(kind))[1])
    assert r.status == 201, r
    (tmp_path / "leaf.pem").write_text(r.json["certificate_pem"])
    proc = pkilint(tmp_path / "leaf.pem")
    assert proc.returncode == 0 and proc.stdout.strip() == "", proc.stdout + proc.stderr


def test_ca_certificates_are_served_and_lint_clean(api, tmp_path):
    for name in ("root", "issuing"):
        r = api.get(f"/ca/{name}.crt", role=None)
        assert r.status == 200 and r.headers["Content-Type"] == "application/pkix-cert" and r.headers.get("ETag")
        cert = x509.load_der_x509_certificate(r.content)
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        (tmp_path / f"{name}.der").write_bytes(r.content)
        proc = pkilint(tmp_path / f"{name}.der")
        assert proc.returncode == 0, proc.stdout
        again = api.get(f"/ca/{name}.crt", role=None, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status == 304
    assert api.get("/ca/nope.crt", role=None).code == "ca-not-found"
