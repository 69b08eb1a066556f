"""Issuance through the API (in-process): the happy path and the one-valid-certificate rule."""

from __future__ import annotations

from cryptography import x509

from tests.support.pki import make_csr


def test_issue_returns_certificate_bound_to_login_id(api):
    api.org("acme")
    api.user("alice", "acme")
    _key, csr = make_csr(cn="mallory")
    r = api.issue("alice", csr)
    assert r.status == 201, r
    body = r.json
    assert body["login_id"] == "alice" and body["org_id"] == "acme" and body["status"] == "active"
    cert = x509.load_pem_x509_certificate(body["certificate_pem"].encode())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice"
    assert format(cert.serial_number, "x") == body["serial"]


def test_second_issuance_while_valid_is_refused(api):
    api.org("acme")
    api.user("alice", "acme")
    first = api.issue("alice", make_csr()[1])
    second = api.issue("alice", make_csr()[1])
    assert second.status == 409 and second.code == "active-certificate-exists"
    assert second.json["serial"] == first.json["serial"]
