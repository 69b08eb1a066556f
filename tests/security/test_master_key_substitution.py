"""Finding 2 (issue 26): a stolen front-end token must not put its own key on a master user's
certificate. A master's renewal needs proof of the current key (the new CSR's DER signed by the
current certificate's key: `current_key_signature`); a master's new certificate after the help
desk revoked theirs needs an operator's enrolment code (`operator_authorised`); issuances and
renewals count towards a per-organisation hourly brake like front-end revocations."""

from __future__ import annotations

import base64
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ca_service.context import Actor
from ca_service.errors import NotPermitted
from ca_service.services.certificates import issuance
from tests.support.api import Api
from tests.support.pki import make_csr, new_key

FRONTEND = Actor(client_name="frontend", role="frontend")


def _proof(key, csr_pem: str) -> str:
    """base64 of a key's signature over the new CSR's DER (the REST renewal's proof)."""
    der = x509.load_pem_x509_csr(csr_pem.encode()).public_bytes(serialization.Encoding.DER)
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(der, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(der, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode()


def _renew(api: Api, serial: str, csr_pem: str, proof: str | None = None):
    body = {"csr": csr_pem} if proof is None else {"csr": csr_pem, "current_key_signature": proof}
    return api.post(f"/v1/certificates/{serial}/renewal", json=body)


def _holder(api: Api, login_id: str = "boss", role: str = "master", key=None) -> dict:
    api.org("acme")
    api.user(login_id, "acme", role=role)
    issued = api.issue(login_id, make_csr(key)[1])
    assert issued.status == 201, issued
    return issued.json


def test_attack_frontend_renews_a_master_with_its_own_key(ctx, api, clock):
    """The review's attack: in the last 40 days the front end renews the master's certificate with
    the attacker's CSR. Before the fix: 201, the real certificate revoked as superseded."""
    boss = _holder(api)
    clock.travel(days=340)
    attacker_key, attacker_csr = make_csr()
    r = _renew(api, boss["serial"], attacker_csr)
    assert r.status == 403 and r.code == "not-permitted", r
    assert "current_key_signature" in r.json["detail"]
    # signed by the attacker's own key, not the current one; or garbage: refused too
    assert _renew(api, boss["serial"], attacker_csr, _proof(attacker_key, attacker_csr)).code == "not-permitted"
    assert _renew(api, boss["serial"], attacker_csr, "not base64 at all!").code == "not-permitted"
    assert _renew(api, boss["serial"], attacker_csr, "").code == "not-permitted"
    assert api.get(f"/v1/certificates/{boss['serial']}").json["status"] == "active"
    # the service refuses a master's renewal without proof whoever calls it
    with pytest.raises(NotPermitted):
        issuance.renew_certificate(ctx, FRONTEND, boss["serial"], attacker_csr)


@pytest.mark.parametrize("kind", ["ec256", "rsa2048"])
def test_a_master_renews_with_proof_of_the_current_key(api, clock, kind):
    current = new_key() if kind == "ec256" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    boss = _holder(api, key=current)
    clock.travel(days=340)
    _, csr = make_csr()
    _, other_csr = make_csr()
    replayed = _renew(api, boss["serial"], other_csr, _proof(current, csr))  # a proof is bound to its CSR
    assert replayed.status == 403 and replayed.code == "not-permitted", replayed
    r = _renew(api, boss["serial"], csr, _proof(current, csr))
    assert r.status == 201, r
    old = api.get(f"/v1/certificates/{boss['serial']}").json
    assert old["status"] == "revoked" and old["revocation_reason"] == "superseded" and old["superseded_by"] == r.json["serial"]


def test_a_general_users_proof_is_optional_but_checked_when_given(api, clock):
    taro = _holder(api, "taro", role="general")
    clock.travel(days=340)
    attacker_key, csr = make_csr()
    bad = _renew(api, taro["serial"], csr, _proof(attacker_key, csr))
    assert bad.status == 403 and bad.code == "not-permitted", bad
    assert _renew(api, taro["serial"], csr).status == 201


def test_the_est_path_passes_key_proven(ctx, api, clock):
    """simplereenroll (TLS client auth proved the current key) calls the service with key_proven=True."""
    boss = _holder(api)
    clock.travel(days=340)
    view, _chain = issuance.renew_certificate(ctx, FRONTEND, boss["serial"], make_csr()[1], key_proven=True)
    assert view.renewal_of == boss["serial"]


def test_attack_frontend_issues_to_a_master_after_the_help_desk_revoked(ctx, api):
    """The review's attack: the help desk revokes a master's certificate (paper procedure); the
    front end issues a new one for the master with the attacker's key. Before the fix: 201."""
    boss = _holder(api)
    r = api.post(
        f"/v1/certificates/{boss['serial']}/revocation", role="operator", json={"reason": "key_compromise", "ticket": "HD-1"}
    )
    assert r.status == 200, r
    attack = api.issue("boss", make_csr()[1])
    assert attack.status == 403 and attack.code == "not-permitted", attack
    assert "Q11" in attack.json["detail"]
    assert api.get("/v1/users/boss").json["current_certificate"] is None
    # an operator's enrolment code (EST, another engineer's path) authorises it
    view, _chain = issuance.issue_certificate(ctx, FRONTEND, "boss", make_csr()[1], operator_authorised=True)
    assert view.login_id == "boss"


def test_a_masters_expired_or_superseded_certificate_does_not_need_the_help_desk(ctx, api, clock):
    """Only a revocation (not a renewal's superseded, not an expiry) sends a master to the help desk."""
    boss = _holder(api)
    clock.travel(days=340)
    successor, _chain = issuance.renew_certificate(ctx, FRONTEND, boss["serial"], make_csr()[1], key_proven=True)
    assert successor.renewal_of == boss["serial"]
    clock.travel(days=400)  # the successor expired: the normal issuance flow (R8)
    r = api.issue("boss", make_csr()[1])
    assert r.status == 201, r


def test_an_operator_cannot_use_rest_issuance(api):
    """REST issuance and renewal are the front end's only (DESIGN §4): the help desk goes through
    the enrolment code, never this door."""
    _holder(api)
    r = api.post("/v1/users/boss/certificates", role="operator", json={"csr": make_csr()[1]})
    assert r.status == 403 and r.code == "forbidden", r


def test_the_documented_openssl_recipe_makes_a_valid_proof(api, clock, tmp_path):
    """README: `openssl req -in new.csr -outform DER | openssl dgst -sha256 -sign current.key | base64 -w0`."""
    current = new_key()
    (tmp_path / "current.key").write_bytes(
        current.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    boss = _holder(api, key=current)
    clock.travel(days=340)
    _, csr = make_csr()
    (tmp_path / "new.csr").write_text(csr)
    der = subprocess.run(["openssl", "req", "-in", "new.csr", "-outform", "DER"], cwd=tmp_path, capture_output=True, check=True)
    signed = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", "current.key"], cwd=tmp_path, input=der.stdout, capture_output=True, check=True
    )
    r = _renew(api, boss["serial"], csr, base64.b64encode(signed.stdout).decode())
    assert r.status == 201, r
