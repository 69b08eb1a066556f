"""Attacks on the enrolment codes and the EST endpoints (issue 23, DESIGN §4c). Each was seen
succeeding (the test failing) against a naive version first: see each test's docstring."""

from __future__ import annotations

import base64
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from ca_service.services.enrolment import codes
from tests.support.api import Api
from tests.support.pki import make_csr, new_key
from tests.test_est import EST, _trusting_api, certs_of, csr_b64, enrol, fresh_throttle, mint, reenrol, until_not_throttled


@pytest.fixture
def acme(api: Api) -> Api:
    api.org("acme")
    api.user("alice", "acme")
    api.user("bob", "acme")
    api.user("boss", "acme", role="master")
    return api


def _flip(code: str) -> str:
    """The same code with its last character changed: wrong, but well-formed."""
    last = code[-1]
    return code[:-1] + ("2" if last != "2" else "3")


# --- brute force ----------------------------------------------------------------------------
def test_five_wrong_codes_void_every_code_of_the_login_id(acme):
    """Naive version (no attempt counter in codes.verify) let the right code through after 5
    wrong ones: seen failing with the counter's `row.attempts += 1` block removed."""
    code = mint(acme, "alice")
    for _ in range(codes.MAX_ATTEMPTS):
        r = enrol(acme, "alice", _flip(code), csr_b64()[1])
        assert r.status == 401, r
    r = enrol(acme, "alice", code, csr_b64()[1])
    assert r.status == 401, r  # the right code is void now: the user asks for a new one
    assert acme.get("/v1/users/alice").json["current_certificate"] is None
    listed = codes.list_codes(_ctx(acme), "alice")
    assert listed[0].status == "voided" and listed[0].void_reason == "too-many-attempts"
    assert listed[0].attempts == codes.MAX_ATTEMPTS
    r = enrol(acme, "alice", mint(acme, "alice"), csr_b64()[1])  # a new code works
    assert r.status == 200, r


def test_unknown_login_id_wrong_code_and_used_code_get_the_same_answer(acme):
    """No oracle: the naive version answered 404 user-not-found for an unknown login ID (the
    issuance service's answer) -- seen failing when simple_enroll skipped the code check for
    unknown login IDs."""
    code = mint(acme, "alice")
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 200
    answers = [
        enrol(acme, "nobody", code, csr_b64()[1]),  # unknown login ID
        enrol(acme, "bob", "0000-0000-0000-0000", csr_b64()[1]),  # no code minted
        enrol(acme, "alice", code, csr_b64()[1]),  # used
        enrol(acme, "alice", "not a code", csr_b64()[1]),  # malformed
    ]
    for r in answers:
        assert r.status == 401, r
        assert r.headers["WWW-Authenticate"] == 'Basic realm="ca-service EST"'
    bodies = {(r.json["code"], r.json["detail"], r.json["title"]) for r in answers}
    assert len(bodies) == 1, bodies


def test_code_comparison_is_constant_time(acme, monkeypatch):
    """A `==` on the hashes (the naive version) leaks how many leading characters match through
    timing. Seen failing with `expected == given`: compare_digest was never called."""
    calls: list[tuple[str, str]] = []
    real = codes.hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(codes.hmac, "compare_digest", spy)
    code = mint(acme, "alice")
    calls.clear()  # (the bearer token's check compares too)
    enrol(acme, "alice", _flip(code), csr_b64()[1])
    enrol(acme, "nobody", code, csr_b64()[1])  # unknown login ID: the same comparison is made
    # only the comparisons of these two attempts' hashes: the failed attempts are audited, and the
    # sealing that may follow a commit compares MACs with the same (patched) function
    given = {codes.code_hash("alice", codes.normalise(_flip(code)) or ""), codes.code_hash("", codes.normalise(code) or "")}
    assert len([c for c in calls if c[1] in given]) == 2


def test_wrong_basic_credentials_count_in_the_bad_token_throttle(acme, ctx):
    """Seen failing when simpleenroll did not call auth_throttle.note_failure: 401s forever."""
    limit = ctx.settings.auth_failure_limit
    code = mint(acme, "alice")  # (a bearer token from a blocked address is refused too)
    statuses = [enrol(acme, f"guess{i}", "0000-0000-0000-0000", csr_b64()[1]).status for i in range(limit + 1)]
    assert statuses[:limit] == [401] * limit and statuses[limit] == 429, statuses
    r = enrol(acme, "alice", code, csr_b64()[1])  # even a right code from this address
    assert r.status == 429 and r.headers.get("Retry-After"), r


# --- codes bound to one login ID and used once ------------------------------------------------
def test_code_of_login_a_does_not_enrol_login_b(acme):
    """Seen failing with the hash not bound to the login ID and verify() looking the code up by
    its hash alone."""
    code = mint(acme, "alice")
    mint(acme, "bob")  # bob has a code too, not this one
    r = enrol(acme, "bob", code, csr_b64()[1])
    assert r.status == 401, r
    assert acme.get("/v1/users/bob").json["current_certificate"] is None
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 200  # a wrong try on bob costs alice nothing


def test_replay_of_a_used_code_after_revocation(acme):
    """A used code must not enrol again, even once the first certificate was revoked (R11 would
    otherwise let a replayed code replace the user's certificate). Seen failing with use_in
    removed from simple_enroll (the code never used up)."""
    code = mint(acme, "alice")
    [cert] = certs_of(enrol(acme, "alice", code, csr_b64()[1]).content)
    r = acme.post(  # the master revokes it (R10): not the help desk, so no voiding helps here
        f"/v1/certificates/{format(cert.serial_number, 'x')}/revocation",
        json={"reason": "key_compromise", "acting_login_id": "boss"},
    )
    assert r.status == 200, r
    r = enrol(acme, "alice", code, csr_b64()[1])
    assert r.status == 401, r


def test_a_new_code_voids_the_older_one(acme):
    old = mint(acme, "alice")
    new = mint(acme, "alice")
    assert enrol(acme, "alice", old, csr_b64()[1]).status == 401
    assert enrol(acme, "alice", new, csr_b64()[1]).status == 200


def test_expired_code_is_refused(acme, clock):
    code = mint(acme, "alice")
    clock.travel(minutes=61)
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 401


def test_failed_issuance_does_not_use_the_code_up(acme):
    """key-reused (and any refusal) rolls the code's use back with the issuance."""
    key = new_key()
    first = mint(acme, "bob")
    assert enrol(acme, "bob", first, csr_b64(key)[1]).status == 200
    code = mint(acme, "alice")
    r = enrol(acme, "alice", code, csr_b64(key)[1])  # bob's key
    assert r.status == 409 and r.code == "key-reused", r
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 200


def test_two_enrolments_racing_with_one_code_give_exactly_one_certificate(live, ctx):
    """Six enrolments at once with one code, through gunicorn's workers: one certificate, the code
    used once (by that certificate), the others refused (401: code used, or 409: the winner's
    certificate). The one-certificate half is also held by the issuance's user lock (R1): without
    use_in, this test still passes; the replay test above is the one that catches a code never
    used up (seen failing)."""
    until_not_throttled(live)  # gunicorn's copy of blocked addresses re-reads Redis each second
    live.org("acme")
    live.user("alice", "acme")
    code = mint(live, "alice")
    bodies = [csr_b64()[1] for _ in range(6)]
    results: list[int] = []
    barrier = threading.Barrier(len(bodies))

    def go(body: bytes) -> None:
        barrier.wait()
        results.append(enrol(live, "alice", code, body).status)

    threads = [threading.Thread(target=go, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(200) == 1, results
    assert all(s in (401, 409) for s in results if s != 200), results
    listed = live.get("/v1/certificates", params={"login_id": "alice"}).json["items"]
    assert len(listed) == 1
    [row] = codes.list_codes(ctx, "alice")
    assert row.status == "used" and row.certificate_serial == listed[0]["serial"]


# --- what voids codes ---------------------------------------------------------------------------
def test_role_change_voids_codes(acme):
    code = mint(acme, "alice")
    r = acme.put("/v1/users/alice", role="operator", json={"org_id": "acme", "role": "master", "ticket": "PAPER-1"})
    assert r.status == 200, r
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 401


def test_switch_away_from_certificates_voids_codes(acme):
    code = mint(acme, "alice")
    r = acme.post("/v1/organizations/acme/login-method", role="operator", json={"login_method": "id_password", "ticket": "T-1"})
    assert r.status == 200, r
    r = acme.post("/v1/organizations/acme/login-method", role="operator", json={"login_method": "certificate", "ticket": "T-2"})
    assert r.status == 200, r
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 401


def test_help_desk_revocation_voids_codes(acme):
    """A code minted before the help desk revoked (say, a stolen PC) must not enrol afterwards."""
    [cert] = certs_of(enrol(acme, "alice", mint(acme, "alice"), csr_b64()[1]).content)
    pending = mint(acme, "alice")  # minted while the certificate is valid: an attacker's
    r = acme.post(
        f"/v1/certificates/{format(cert.serial_number, 'x')}/revocation", role="operator", json={"reason": "key_compromise"}
    )
    assert r.status == 200, r
    assert enrol(acme, "alice", pending, csr_b64()[1]).status == 401


def test_revoked_master_code_needs_operator_with_ticket(acme):
    """R9/Q11: once a master's certificate is revoked, a front end cannot mint its code."""
    assert acme.post("/v1/users/boss/enrolment-codes", json={}).status == 201  # never held one: front end mints
    r = acme.post("/v1/users/boss/enrolment-codes", role="operator", json={})
    assert r.status == 400 and r.code == "ticket-required", r
    [cert] = certs_of(enrol(acme, "boss", mint(acme, "boss"), csr_b64()[1]).content)
    serial = format(cert.serial_number, "x")
    r = acme.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise", "ticket": "P-9"})
    assert r.status == 200, r
    r = acme.post("/v1/users/boss/enrolment-codes", json={})
    assert r.status == 403 and r.code == "not-permitted", r
    code = mint(acme, "boss", role="operator", ticket="P-10")
    assert enrol(acme, "boss", code, csr_b64()[1]).status == 200


def test_code_minting_refusals(acme):
    acme.org("legacy", login_method="id_password")
    acme.user("carol", "legacy")
    r = acme.post("/v1/users/carol/enrolment-codes", json={})
    assert r.status == 409 and r.code == "login-method-not-certificate", r
    r = acme.post("/v1/users/nobody/enrolment-codes", json={})
    assert r.status == 404 and r.code == "user-not-found", r
    assert acme.post("/v1/users/alice/enrolment-codes", role="auditor", json={}).status == 403


def test_code_never_in_audit_or_logs(acme, caplog):
    code = mint(acme, "alice")
    enrol(acme, "alice", _flip(code), csr_b64()[1])
    enrol(acme, "alice", code, csr_b64()[1])
    events = acme.get("/v1/audit-events", role="operator").content.decode()
    for spelling in (code, code.replace("-", ""), _flip(code), _flip(code).replace("-", "")):
        assert spelling not in events
        assert spelling not in caplog.text
    metrics = acme.get("/metrics", role=None).content.decode()
    assert code.replace("-", "") not in metrics.replace("-", "")
    assert "enrolment_code.minted" in events and "enrolment_code.used" in events


# --- re-enrolment ---------------------------------------------------------------------------------
def test_forged_client_cert_header_from_an_untrusted_address_is_ignored(acme, clock):
    """Seen failing (a renewal for anyone whose certificate is public) with HTTP_X_SSL_CLIENT_CERT
    taken out of api/proxy.py's _FORWARDING: the header was believed from any peer."""
    [cert] = certs_of(enrol(acme, "alice", mint(acme, "alice"), csr_b64()[1]).content)
    clock.travel(days=330)
    r = reenrol(acme, cert, csr_b64()[1])  # the test client's 127.0.0.1 is not a trusted proxy here
    assert r.status == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="ca-service EST"', r


def test_revoked_superseded_expired_or_foreign_certificate_does_not_re_enrol(acme, ctx, tokens, clock):
    """Seen failing (a second renewal) with the status check of est._presented removed:
    renew_certificate alone refused these as 409s, but a foreign certificate with a known serial
    was accepted when the lookup was by serial instead of fingerprint."""
    proxy = _trusting_api(ctx, tokens)
    [a1] = certs_of(enrol(acme, "alice", mint(acme, "alice"), csr_b64()[1]).content)
    [b1] = certs_of(enrol(acme, "bob", mint(acme, "bob"), csr_b64()[1]).content)
    clock.travel(days=330)
    [a2] = certs_of(reenrol(proxy, a1, csr_b64()[1]).content)
    assert reenrol(proxy, a1, csr_b64()[1]).status == 401  # superseded
    acme.post(f"/v1/certificates/{format(b1.serial_number, 'x')}/revocation", role="operator", json={"reason": "unspecified"})
    assert reenrol(proxy, b1, csr_b64()[1]).status == 401  # revoked
    foreign = _self_signed_like(a2)
    assert reenrol(proxy, foreign, csr_b64()[1]).status == 401  # same serial and subject, not ours
    clock.travel(days=366)
    assert reenrol(proxy, a2, csr_b64()[1]).status == 401  # expired
    r = proxy.post(f"{EST}/simplereenroll", role=None, data=csr_b64()[1], headers={"X-SSL-Client-Cert": "%%%garbage"})
    assert r.status == 401, r


def _self_signed_like(cert: x509.Certificate) -> x509.Certificate:
    key = new_key()
    return (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(key.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .sign(key, __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256())
    )


def test_re_enrolment_outside_the_window_or_with_the_same_key(acme, ctx, tokens, clock):
    proxy = _trusting_api(ctx, tokens)
    key = new_key()
    [cert] = certs_of(enrol(acme, "alice", mint(acme, "alice"), csr_b64(key)[1]).content)
    r = reenrol(proxy, cert, csr_b64()[1])
    assert r.status == 409 and r.code == "renewal-not-open", r
    clock.travel(days=330)
    r = reenrol(proxy, cert, csr_b64(key)[1])
    assert r.status == 409 and r.code == "key-reused", r


# --- hostile CSRs and bodies -------------------------------------------------------------------------
def test_csr_claiming_another_login_id_or_ca_true_is_ignored(acme):
    _key, pem = make_csr(cn="boss", extensions=True)  # CN of the master, CA:true, a SAN
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    r = enrol(acme, "alice", mint(acme, "alice"), base64.b64encode(der))
    assert r.status == 200, r
    [cert] = certs_of(r.content)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca is False
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"!!!! not base64 ####", id="not-base64"),
        pytest.param(b"\xff\xfe\x00garbage", id="binary-garbage"),
        pytest.param(b"MIIB", id="truncated-base64"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n", id="truncated-pem"),
        pytest.param(b"0\x82\x01\x00\x01\x02", id="truncated-der"),
        pytest.param(base64.b64encode(b"0" * 40), id="base64-of-junk"),
        pytest.param(b"-----BEGIN CERTIFICATE REQUEST-----\n\xff\xfe\n-----END", id="pem-not-ascii"),
    ],
)
def test_bad_bodies_are_4xx_and_leave_the_code_usable(acme, body):
    """Seen failing (500) with est._csr_pem letting pki.est.EstBodyRejected through unmapped."""
    code = mint(acme, "alice")
    r = enrol(acme, "alice", code, body)
    assert 400 <= r.status < 500 and r.status != 401, r
    assert r.headers["Content-Type"] == "application/problem+json"
    assert r.code in {"invalid-csr", "csr-signature-invalid", "validation-error"}, r
    assert enrol(acme, "alice", code, csr_b64()[1]).status == 200


def test_truncated_csr_of_a_real_request(acme):
    _key, body = csr_b64()
    raw = base64.b64decode(body)
    r = enrol(acme, "alice", mint(acme, "alice"), base64.b64encode(raw[: len(raw) // 2]))
    assert r.status == 400 and r.code == "invalid-csr", r


def test_oversized_body_is_413(acme, ctx):
    big = b"A" * (ctx.settings.max_body_bytes + 1)
    r = enrol(acme, "alice", mint(acme, "alice"), big)
    assert r.status == 413, r
    r = acme.post(f"{EST}/simplereenroll", role=None, data=big)
    assert r.status == 413, r


def test_basic_header_garbage_is_401_not_500(acme):
    for header in (
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer x",
        "Basic " + "A" * 5000,
        "Basic " + base64.b64encode(b"\x00alice:\x00").decode(),
    ):
        r = acme.post(f"{EST}/simpleenroll", role=None, data=csr_b64()[1], headers={"Authorization": header})
        assert r.status == 401, (header, r)


def _ctx(api: Api):  # the in-process app's context
    return api.flask_client.application.extensions["ca_service"]


_ = fresh_throttle  # autouse: every test starts with no bad-credential counts
