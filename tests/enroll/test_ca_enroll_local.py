"""ca-enroll's own parts against certificates the real CA issued (through the in-process API):
the checks before installing, the NSS database (certutil/pk12util), `status` in Japan time and the
PKCS#12 for Windows (read back with openssl). The EST round trips: tests/test_ca_enroll.py."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca_enroll import keys
from ca_enroll.checks import check_issued
from ca_enroll.errors import EnrollError, Exit
from ca_enroll.nssdb import NssDb
from tests.support.api import Api
from tests.support.pki import openssl

ENROLL = [sys.executable, "-m", "ca_enroll.cli"]


def _issue(api: Api, login_id: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    csr = keys.csr_for(key, login_id).public_bytes(Encoding.PEM).decode()
    r = api.issue(login_id, csr)
    assert r.status == 201, r
    return x509.load_pem_x509_certificate(r.json["certificate_pem"].encode())


def _cas(api: Api) -> list[x509.Certificate]:
    return [x509.load_der_x509_certificate(api.get(f"/ca/{name}.crt", role=None).content) for name in ("issuing", "root")]


@pytest.fixture
def org(api: Api) -> Api:
    api.org("acme")
    for login_id in ("alice", "bob"):
        api.user(login_id, "acme")
    return api


def test_checks_accept_the_cas_certificate_and_refuse_what_is_not_ours(org):
    key = keys.new_key()
    cert = _issue(org, "alice", key)
    cas = _cas(org)
    chain = check_issued(cert, login_id="alice", key=key, cas=cas)
    assert [c.subject for c in chain] == [cas[0].subject, cas[1].subject]
    with pytest.raises(EnrollError) as wrong_cn:
        check_issued(cert, login_id="bob", key=key, cas=cas)  # another login ID's certificate
    assert (wrong_cn.value.exit_code, wrong_cn.value.params["reason_key"]) == (Exit.CHECK_FAILED, "check-cn")
    with pytest.raises(EnrollError) as wrong_key:
        check_issued(cert, login_id="alice", key=keys.new_key(), cas=cas)  # not the key this app made
    assert wrong_key.value.params["reason_key"] == "check-key"
    with pytest.raises(EnrollError) as no_chain:
        check_issued(cert, login_id="alice", key=key, cas=[_impostor_ca()])  # cacerts from somebody else
    assert no_chain.value.params["reason_key"] == "check-chain"
    with pytest.raises(EnrollError) as no_root:
        check_issued(cert, login_id="alice", key=key, cas=cas[:1])  # the issuing CA alone: no anchor
    assert no_root.value.params["reason_key"] == "check-chain"
    later = cert.not_valid_after_utc + timedelta(seconds=1)
    with pytest.raises(EnrollError) as expired:
        check_issued(cert, login_id="alice", key=key, cas=cas, now=later)
    assert expired.value.params["reason_key"] == "check-validity"


def _impostor_ca() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    real = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Impostor")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder().subject_name(real).issuer_name(real).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip


def _no_plain_key(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY-----" not in path.read_bytes() or b"ENCRYPTED" in path.read_bytes(), path


def test_install_replaces_the_login_ids_certificate_and_status_reads_it_in_japan_time(org, tmp_path):
    db = NssDb(tmp_path / "nssdb")  # created on first use, as ~/.pki/nssdb would be
    key_a, key_b = keys.new_key(), keys.new_key()
    alice = _issue(org, "alice", key_a)
    bob = _issue(org, "bob", key_b)
    cas = _cas(org)
    db.install(key_a, alice, check_issued(alice, login_id="alice", key=key_a, cas=cas))
    db.install(key_b, bob, check_issued(bob, login_id="bob", key=key_b, cas=cas))  # Q7: two users, one PC
    assert {(i.login_id, i.certificate) for i in db.user_certificates()} == {("alice", alice), ("bob", bob)}
    assert stat.S_IMODE((tmp_path / "nssdb").stat().st_mode) == 0o700
    _no_plain_key(tmp_path)
    # the key went in with the certificate: NSS holds the private key that matches it
    with db.exported(db.of_login_id("alice")[0]) as (key, cert):
        assert cert == alice and key.public_key().public_numbers() == key_a.public_key().public_numbers()

    # a new certificate for alice (after a revocation) replaces hers and leaves bob's alone
    org.post(f"/v1/certificates/{format(alice.serial_number, 'x')}/revocation", role="operator",
             json={"reason": "key_compromise", "ticket": "T-1"})  # fmt: skip
    key_a2 = keys.new_key()
    alice2 = _issue(org, "alice", key_a2)
    db.install(key_a2, alice2, check_issued(alice2, login_id="alice", key=key_a2, cas=cas))
    assert [i.certificate for i in db.of_login_id("alice")] == [alice2]
    assert [i.certificate for i in db.of_login_id("bob")] == [bob]
    keys_listing = subprocess.run(["certutil", "-K", "-d", f"sql:{tmp_path / 'nssdb'}"], capture_output=True, text=True).stdout
    assert keys_listing.count("alice (ca-enroll)") == 1 and "orphan" not in keys_listing  # the old key is gone too

    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run([*ENROLL, "status", "--nssdb", str(tmp_path / "nssdb"), "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    import json

    rows = {row["login_id"]: row for row in json.loads(r.stdout)}
    assert rows["alice"]["serial"] == format(alice2.serial_number, "x")
    api_after = org.get(f"/v1/certificates/{rows['alice']['serial']}").json["not_after"]
    assert rows["alice"]["not_after"] == api_after  # Q9: the API's notAfter
    jst = alice2.not_valid_after_utc + timedelta(hours=9)
    assert rows["alice"]["not_after_jst"] == jst.strftime("%Y年%m月%d日 %H:%M:%S（日本時間）")
    text = subprocess.run([*ENROLL, "status", "--nssdb", str(tmp_path / "nssdb"), "--lang", "en"],
                          capture_output=True, text=True, env=env).stdout  # fmt: skip
    assert jst.strftime("%Y-%m-%d %H:%M:%S JST") in text and "alice" in text and "bob" in text


def test_status_of_an_empty_pc(tmp_path):
    r = subprocess.run([*ENROLL, "status", "--nssdb", str(tmp_path / "none")], capture_output=True, text=True)
    assert r.returncode == 0 and "インストールされていません" in r.stdout


def test_the_pkcs12_for_windows_is_aes256_and_holds_key_certificate_and_chain(org, tmp_path):
    key = keys.new_key()
    cert = _issue(org, "alice", key)
    cas = _cas(org)
    data = keys.pkcs12_bytes("alice", key, cert, cas, "s3cret-pw")
    (tmp_path / "a.p12").write_bytes(data)
    info = openssl("pkcs12", "-info", "-noout", "-in", str(tmp_path / "a.p12"), "-passin", "pass:s3cret-pw", check=True)
    assert "AES-256-CBC" in info.stderr and "PBKDF2" in info.stderr, info.stderr
    dump = openssl("pkcs12", "-in", str(tmp_path / "a.p12"), "-passin", "pass:s3cret-pw", "-nodes", check=True).stdout
    assert dump.count("BEGIN CERTIFICATE") == 3 and "BEGIN PRIVATE KEY" in dump
    assert openssl("pkcs12", "-in", str(tmp_path / "a.p12"), "-passin", "pass:wrong", "-nodes").returncode != 0


def test_a_missing_tool_is_a_clear_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no certutil/pk12util on PATH
    with pytest.raises(EnrollError) as err:
        NssDb(tmp_path / "db")
    assert err.value.exit_code == Exit.STORE_FAILED and err.value.key == "nss-tools-missing"
