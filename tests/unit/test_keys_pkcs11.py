"""The pkcs11 key backend against a real SoftHSM2 token: keys generated inside the token and never
extractable, cryptography's certificate/CRL/OCSP builders signing through it (checked with
openssl), and the PKCS#11 pitfalls: threads, fork, a lost token, a wrong PIN."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ca_service.pki.hierarchy import build_root, ca_name
from ca_service.pki.keys import KeyUnavailable
from ca_service.pki.keys_pkcs11 import Pkcs11KeyBackend, key_id
from ca_service.pki.signer import KeySigner
from ca_service.pki.signing import verify_bytes
from tests.support.hsm import SoftHsm, create_softhsm, softhsm_available, softhsm_module
from tests.support.pki import openssl

pytestmark = pytest.mark.skipif(not softhsm_available(), reason="softhsm2 is not installed (.ci/run installs it)")


@pytest.fixture
def hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    # a label of its own: the process-wide library still knows the tokens of earlier tests
    token = create_softhsm(tmp_path / "softhsm", f"unit-{secrets.token_hex(4)}")
    monkeypatch.setenv("SOFTHSM2_CONF", str(token.conf))
    yield token


def _backend(hsm: SoftHsm) -> Pkcs11KeyBackend:
    module = softhsm_module()
    assert module is not None
    return Pkcs11KeyBackend(module, hsm.label, hsm.pin_file)


def _raw_session(hsm: SoftHsm) -> pkcs11.Session:
    """A second, independent look at the token (its own library handle would clash with the
    backend's in this process, so this reuses the backend's process-wide library)."""
    from ca_service.pki import pkcs11_token

    module = softhsm_module()
    assert module is not None
    return pkcs11_token._LIBRARIES[module].sessions[hsm.label]


@pytest.mark.parametrize("algorithm", ["ec-p256", "ec-p384", "rsa-2048"])
def test_generated_in_token_never_extractable_and_signs_cert_crl_ocsp(hsm: SoftHsm, tmp_path: Path, algorithm: str) -> None:
    backend = _backend(hsm)
    assert not backend.exists("root-1")
    key = backend.generate("root-1", algorithm)
    assert backend.exists("root-1")
    with pytest.raises(KeyUnavailable, match="already exists"):
        backend.generate("root-1", algorithm)
    with pytest.raises(TypeError):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    private = next(
        _raw_session(hsm).get_objects({pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, pkcs11.Attribute.LABEL: "root-1"})
    )
    assert private[pkcs11.Attribute.SENSITIVE] and not private[pkcs11.Attribute.EXTRACTABLE]
    assert private[pkcs11.Attribute.NEVER_EXTRACTABLE] and private[pkcs11.Attribute.LOCAL]  # generated inside
    assert bytes(private[pkcs11.Attribute.ID]) == key_id("root-1")

    now = datetime.now(UTC).replace(microsecond=0)
    signer = backend.signer("root-1")
    cert = build_root(
        key=signer, subject=ca_name("Test Bank", "HSM Root"), serial=7, not_before=now, not_after=now + timedelta(days=30)
    )
    (tmp_path / "root.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    crl = signer.sign_crl(
        x509.CertificateRevocationListBuilder()
        .issuer_name(cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    (tmp_path / "root.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    out = openssl("verify", "-CAfile", "root.pem", "-CRLfile", "root.crl", "-crl_check", "root.pem", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    response = signer.sign_ocsp_response(
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert, issuer=cert, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,  # noqa: S303 - CertID
            this_update=now, next_update=now + timedelta(hours=1), revocation_time=None, revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
    )  # fmt: skip
    assert response.signature_hash_algorithm is not None
    data = b"audit checkpoint"
    verify_bytes(key, signer.sign_bytes(data), data)
    # a fresh backend (another process would do the same) finds the key by class+type+label+id
    assert _backend(hsm).load("root-1").public_key() == key.public_key()


def test_threads_share_one_session_without_errors(hsm: SoftHsm) -> None:
    backend = _backend(hsm)
    signer = KeySigner("issuing-1", backend.generate("issuing-1", "ec-p256"))
    errors: list[BaseException] = []

    def sign_many() -> None:
        try:
            for i in range(15):
                data = f"{threading.get_ident()}-{i}".encode()
                signer.verify_bytes(signer.sign_bytes(data), data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign_many) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_fork_child_reinitialises_and_parent_keeps_working(hsm: SoftHsm) -> None:
    backend = _backend(hsm)
    backend.generate("issuing-1", "ec-p256")
    signer = backend.signer("issuing-1")
    signer.sign_bytes(b"before fork")  # the parent has a logged-in session
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: same objects, a new process
        code = 1
        try:
            data = b"child"
            signer.verify_bytes(signer.sign_bytes(data), data)
            code = 0
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"\x00" and os.waitstatus_to_exitcode(status) == 0
    data = b"parent after fork"
    signer.verify_bytes(signer.sign_bytes(data), data)


def test_token_gone_raises_key_error_then_recovers_without_restart(hsm: SoftHsm) -> None:
    backend = _backend(hsm)
    signer = KeySigner("issuing-1", backend.generate("issuing-1", "ec-p384"))
    signer.sign_bytes(b"up")
    away = hsm.directory / "tokens.away"
    hsm.tokens.rename(away)  # the HSM is unreachable
    try:
        with pytest.raises(KeyUnavailable, match="unavailable"):
            signer.sign_bytes(b"down")
        with pytest.raises(KeyUnavailable):
            signer.sign_bytes(b"still down")
    finally:
        away.rename(hsm.tokens)
    data = b"back"
    signer.verify_bytes(signer.sign_bytes(data), data)  # same objects, same process


def test_wrong_pin_is_never_retried(hsm: SoftHsm, tmp_path: Path) -> None:
    module = softhsm_module()
    assert module is not None
    good_pin = hsm.pin_file.read_text()
    _backend(hsm).generate("issuing-1", "ec-p256")
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("00000000")
    wrong.chmod(0o600)
    from ca_service.pki import pkcs11_token

    pkcs11_token._LIBRARIES[module].sessions.pop(hsm.label)  # as a fresh process would start: logged out
    pkcs11_token._LIBRARIES[module].lib.reinitialize()
    backend = Pkcs11KeyBackend(module, hsm.label, wrong)
    with pytest.raises(KeyUnavailable, match="refused the PIN"):
        backend.load("issuing-1")
    with pytest.raises(KeyUnavailable, match="not retried"):
        backend.load("issuing-1")
    wrong.write_text(good_pin)  # the operator fixes the PIN file: the next call logs in
    assert backend.load("issuing-1").key_size == 256


def test_label_alone_is_not_enough_duplicates_are_refused(hsm: SoftHsm) -> None:
    backend = _backend(hsm)
    backend.generate("issuing-1", "ec-p256")
    session = _raw_session(hsm)
    # a second key with the same label but another id is not "ours"
    params = session.create_domain_parameters(
        pkcs11.KeyType.EC, {pkcs11.Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters("secp256r1")}, local=True
    )
    params.generate_keypair(store=True, label="issuing-1", id=b"other")
    assert backend.load("issuing-1").key_size == 256
    params.generate_keypair(store=True, label="issuing-1", id=key_id("issuing-1"))
    fresh = _backend(hsm)
    with pytest.raises(KeyUnavailable, match="remove the duplicates"):
        fresh.load("issuing-1")


def test_missing_key_is_a_key_error(hsm: SoftHsm) -> None:
    backend = _backend(hsm)
    assert not backend.exists("issuing-9")
    with pytest.raises(KeyUnavailable, match="not on HSM token"):
        backend.load("issuing-9")
    with pytest.raises(KeyUnavailable):
        backend.check("issuing-9")
    backend.check_all()  # the token itself is fine
