"""Bad input: each gets its status and problem `code`, as problem+json, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ca_service.store.models import AuditEvent, Certificate, Organization, User
from tests.support.pki import make_csr, new_key, tamper_csr_signature


def _counts(ctx) -> tuple[int, ...]:
    with ctx.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Certificate, AuditEvent, User, Organization))


@pytest.fixture
def registered(api):
    api.org("acme")
    api.user("alice", "acme")
    api.org("legacy", login_method="id_password")
    api.user("carol", "legacy")


def _assert_problem(r, status, code):
    assert r.status == status, r
    assert r.headers["Content-Type"].startswith("application/problem+json"), r.headers
    body = r.json
    assert body["code"] == code and body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


CASES = {
    "garbage-csr": (
        lambda: {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n"},
        400,
        "invalid-csr",
    ),
    "not-pem": (lambda: {"csr": "hello"}, 400, "invalid-csr"),
    "tampered-signature": (lambda: {"csr": tamper_csr_signature(make_csr()[1])}, 400, "csr-signature-invalid"),
    "rsa-1024": (lambda: {"csr": make_csr(new_key("rsa1024"))[1]}, 400, "key-rejected"),
    "ed25519": (lambda: {"csr": make_csr(new_key("ed25519"))[1]}, 400, "key-rejected"),
    "p521": (lambda: {"csr": make_csr(new_key("ec521"))[1]}, 400, "key-rejected"),
    "wrong-type": (lambda: {"csr": 12345}, 400, "validation-error"),
    "missing-field": (lambda: {}, 400, "validation-error"),
    "unknown-field": (lambda: {"csr": make_csr()[1], "subject": "CN=admin"}, 400, "validation-error"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_issuance_requests(api, ctx, registered, case):
    make_body, status, code = CASES[case]
    before = _counts(ctx)
    _assert_problem(api.post("/v1/users/alice/certificates", json=make_body()), status, code)
    assert _counts(ctx) == before


def test_validation_error_names_the_field_and_does_not_echo_input(api, registered):
    body = _assert_problem(api.post("/v1/users/alice/certificates", json={"csr": 12345}), 400, "validation-error")
    assert "csr" in body["detail"] and body["errors"][0]["field"] == "csr"
    assert "12345" not in str(body)


def test_key_reuse_is_refused(api, ctx, registered):
    key = new_key()
    assert api.issue("alice", make_csr(key)[1]).status == 201
    api.user("dave", "acme")
    before = _counts(ctx)
    _assert_problem(api.issue("dave", make_csr(key)[1]), 409, "key-reused")
    assert _counts(ctx) == before


def test_unknown_user_and_id_password_organisation(api, ctx, registered):
    before = _counts(ctx)
    _assert_problem(api.issue("nobody", make_csr()[1]), 404, "user-not-found")
    _assert_problem(api.issue("carol", make_csr()[1]), 409, "login-method-not-certificate")
    assert _counts(ctx) == before


def test_malformed_json_oversized_body_and_media_type(api, ctx, registered):
    before = _counts(ctx)
    r = api.post("/v1/users/alice/certificates", data=b'{"csr": ', headers={"Content-Type": "application/json"})
    _assert_problem(r, 400, "validation-error")
    r = api.post("/v1/users/alice/certificates", data=b"x" * (70 * 1024), headers={"Content-Type": "application/json"})
    _assert_problem(r, 413, "payload-too-large")
    r = api.post("/v1/users/alice/certificates", data=b"csr=abc", headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_problem(r, 415, "unsupported-media-type")
    assert _counts(ctx) == before


def test_authentication_and_roles(api, ctx, registered):
    before = _counts(ctx)
    body = {"csr": make_csr()[1]}
    _assert_problem(api.post("/v1/users/alice/certificates", role=None, json=body), 401, "unauthenticated")
    r = api.post("/v1/users/alice/certificates", role=None, json=body, headers={"Authorization": "Bearer cas_wrong"})
    _assert_problem(r, 401, "unauthenticated")
    _assert_problem(api.post("/v1/users/alice/certificates", role="operator", json=body), 403, "forbidden")
    _assert_problem(api.post("/v1/users/alice/certificates", role="auditor", json=body), 403, "forbidden")
    _assert_problem(api.put("/v1/organizations/x", role="frontend", json={"name": "X"}), 403, "forbidden")
    assert _counts(ctx) == before


def test_http_errors_are_problems(api, registered):
    _assert_problem(api.get("/v1/nothing-here"), 404, "not-found")
    _assert_problem(api.request("DELETE", "/v1/users/alice"), 405, "method-not-allowed")
    _assert_problem(api.get("/v1/certificates/zz-not-hex"), 400, "validation-error")
    _assert_problem(api.get("/v1/certificates/abcdef"), 404, "certificate-not-found")
    _assert_problem(api.get("/v1/users/bad%20id"), 400, "validation-error")
    _assert_problem(api.get("/v1/certificates", params={"limit": 0}), 400, "validation-error")
    _assert_problem(api.get("/v1/certificates", params={"cursor": "garbage"}), 400, "validation-error")


def test_user_cannot_move_organisation(api, registered):
    r = api.put("/v1/users/alice", role="operator", json={"org_id": "legacy", "role": "general"})
    _assert_problem(r, 409, "organization-change-refused")
    _assert_problem(
        api.put("/v1/users/zed", role="operator", json={"org_id": "nope", "role": "general"}), 404, "organization-not-found"
    )
    _assert_problem(api.put("/v1/users/zed", role="operator", json={"org_id": "acme", "role": "admin"}), 400, "validation-error")
