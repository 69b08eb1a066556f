"""File keys: PBES2 with 600,000 PBKDF2-HMAC-SHA256 rounds (proved from the DER with openssl
asn1parse, not from what wrote it), the root under a passphrase of its own, files of older
versions (2,048 rounds, root under the online passphrase) still loading and re-encrypted by
`rekey`."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca_service.pki.keys import KDF_ROUNDS, EncryptedFileKeyBackend, KeyUnavailable, is_weak, kdf_of
from config.settings import SettingsError, load_settings
from tests.support.pki import openssl

ONLINE = b"online-passphrase-0123"
ROOT = b"root-passphrase-456789"


def _pbkdf2_rounds_by_openssl(path: Path) -> tuple[str, int]:
    """(prf, iteration count) of a PEM EncryptedPrivateKeyInfo, as openssl reads its DER."""
    out = openssl("asn1parse", "-in", str(path), check=True).stdout
    assert ":PBES2" in out and ":PBKDF2" in out, out
    # the INTEGER right after the salt OCTET STRING is the iteration count (hex)
    count = re.search(r"prim: OCTET STRING\s+\[HEX DUMP\]:[0-9A-F]+\n.*prim: INTEGER\s+:([0-9A-F]+)", out)
    assert count is not None, out
    prf = "hmacWithSHA256" if ":hmacWithSHA256" in out else "hmacWithSHA1"
    return prf, int(count.group(1), 16)


def _opens(name: str, passphrase: bytes, directory: Path) -> bool:
    proc = openssl("pkey", "-in", f"{name}.key.pem", "-passin", f"pass:{passphrase.decode()}", "-noout", cwd=directory)
    return proc.returncode == 0


def test_new_key_files_use_600000_pbkdf2_sha256_rounds(tmp_path: Path) -> None:
    backend = EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT)
    backend.generate("issuing-1", "ec-p256")
    backend.generate("root-1", "ec-p384")
    for name in ("issuing-1", "root-1"):
        path = tmp_path / f"{name}.key.pem"
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert _pbkdf2_rounds_by_openssl(path) == ("hmacWithSHA256", 600_000)
        assert kdf_of(path.read_bytes()) == ("pbkdf2-sha256", KDF_ROUNDS) and not is_weak(path.read_bytes())
    # openssl itself decrypts them: a standard PKCS#8 file, each under its own passphrase
    assert (
        openssl("pkey", "-in", "issuing-1.key.pem", "-passin", f"pass:{ONLINE.decode()}", "-noout", cwd=tmp_path).returncode == 0
    )
    assert openssl("pkey", "-in", "root-1.key.pem", "-passin", f"pass:{ROOT.decode()}", "-noout", cwd=tmp_path).returncode == 0
    assert not _opens("root-1", ONLINE, tmp_path)
    fresh = EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT)
    assert fresh.load("root-1").public_key() == backend.load("root-1").public_key()


def test_the_root_passphrase_is_asked_only_when_the_root_key_is_used(tmp_path: Path) -> None:
    EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT).generate("root-1", "ec-p384")
    EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT).generate("issuing-1", "ec-p256")

    def no_root_passphrase() -> bytes:
        raise SettingsError("CA_ROOT_KEY_PASSPHRASE or CA_ROOT_KEY_PASSPHRASE_FILE must be set")

    online_only = EncryptedFileKeyBackend(tmp_path, ONLINE, no_root_passphrase)
    assert online_only.load("issuing-1").key_size == 256
    with pytest.raises(SettingsError, match="CA_ROOT_KEY_PASSPHRASE"):
        online_only.load("root-1")
    wrong = EncryptedFileKeyBackend(tmp_path, ONLINE, b"not-the-root-passphrase")
    with pytest.raises(KeyUnavailable, match="CA_ROOT_KEY_PASSPHRASE"):
        wrong.load("root-1")


def _legacy_file(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    """What earlier versions wrote: BestAvailableEncryption (PBKDF2, 2,048 rounds)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    )
    path.write_bytes(pem)
    path.chmod(0o600)


def test_legacy_files_load_and_rekey_moves_them_to_600000_rounds_and_the_root_passphrase(tmp_path: Path) -> None:
    issuing, root = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    _legacy_file(tmp_path / "issuing-1.key.pem", issuing, ONLINE)
    _legacy_file(tmp_path / "root-1.key.pem", root, ONLINE)  # one shared passphrase, as before
    assert _pbkdf2_rounds_by_openssl(tmp_path / "issuing-1.key.pem")[1] == 2048
    backend = EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT)
    assert backend.load("issuing-1").public_key() == issuing.public_key()  # still loads
    assert backend.load("root-1").public_key() == root.public_key()  # under the old shared passphrase
    assert sorted(r for r in backend.key_refs() if backend.rekey(r)) == ["issuing-1", "root-1"]
    assert [r for r in backend.key_refs() if backend.rekey(r)] == []  # idempotent
    for name in ("issuing-1", "root-1"):
        assert _pbkdf2_rounds_by_openssl(tmp_path / f"{name}.key.pem") == ("hmacWithSHA256", 600_000)
    after = EncryptedFileKeyBackend(tmp_path, ONLINE, ROOT)
    assert after.load("issuing-1").public_key() == issuing.public_key()
    assert after.load("root-1").public_key() == root.public_key()
    assert not _opens("root-1", ONLINE, tmp_path)


def test_settings_separate_the_root_passphrase(tmp_path: Path) -> None:
    base = {"CA_DATA_DIR": str(tmp_path), "CA_KEY_PASSPHRASE": ONLINE.decode()}
    with pytest.raises(SettingsError, match="CA_ROOT_KEY_PASSPHRASE"):
        load_settings(base).root_key_passphrase()
    assert load_settings({**base, "CA_DEV_MODE": "1"}).root_key_passphrase() == ONLINE  # `ca-service dev` only
    with pytest.raises(SettingsError, match="must differ"):
        load_settings({**base, "CA_ROOT_KEY_PASSPHRASE": ONLINE.decode()}).root_key_passphrase()
    secret = tmp_path / "root-pass"
    secret.write_text(ROOT.decode())
    secret.chmod(0o640)
    with pytest.raises(SettingsError, match="readable by group"):
        load_settings({**base, "CA_ROOT_KEY_PASSPHRASE_FILE": str(secret)}).root_key_passphrase()
    secret.chmod(0o600)
    assert load_settings({**base, "CA_ROOT_KEY_PASSPHRASE_FILE": str(secret)}).root_key_passphrase() == ROOT
    with pytest.raises(SettingsError, match="CA_PKCS11_MODULE"):
        load_settings({**base, "CA_KEY_BACKEND": "pkcs11"})
    with pytest.raises(SettingsError, match="CA_KEY_BACKEND"):
        load_settings({**base, "CA_KEY_BACKEND": "hsm"})
