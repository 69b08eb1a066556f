"""Private-key storage behind one interface.

Callers ask a `KeyBackend` for a signing key by reference; they never see files or passphrases.
`EncryptedFileKeyBackend` keeps PKCS#8 PEM, mode 0600, encrypted with PBES2 (PBKDF2-HMAC-SHA256,
600,000 rounds, AES-256-CBC), and refuses keys that group or others can read. Root keys
(`root-N`) have their own passphrase (CA_ROOT_KEY_PASSPHRASE), asked for only when a ceremony
command uses the root. Files written by older versions (2,048 rounds, root under the online
passphrase) still load; `ca-service ca rekey-files` rewrites them. The `pkcs11` backend
(ca_service.pki.keys_pkcs11) implements the same protocol with keys inside an HSM token.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from asn1crypto import algos as asn1_algos
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from ca_service.pki.signer import KeySigner, Signer
from ca_service.pki.signing import CAPrivateKey

log = logging.getLogger("ca_service.keys")

KDF_ROUNDS = 600_000  # PBKDF2-HMAC-SHA256 (OWASP 2023); DESIGN §3 "Key custody"


class KeyUnavailable(Exception):
    """A key could not be created or loaded; message is safe to show an operator."""


def is_root_ref(key_ref: str) -> bool:
    return key_ref.startswith("root-")


def encrypt_pkcs8(key: CAPrivateKey, passphrase: bytes, rounds: int = KDF_ROUNDS) -> bytes:
    """PEM EncryptedPrivateKeyInfo: PBES2, PBKDF2-HMAC-SHA256 with `rounds`, AES-256-CBC.
    (cryptography's BestAvailableEncryption uses 2,048 rounds and cannot be told otherwise.)"""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    aes_key = PBKDF2HMAC(hashes.SHA256(), 32, salt, rounds).derive(passphrase)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(der) + padder.finalize()) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": asn1_algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": rounds,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": ciphertext,
        }
    )
    return asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump())


def kdf_of(pem: bytes) -> tuple[str, int]:
    """('pbkdf2-sha256', rounds), ('pbkdf2-sha1', rounds), ('scrypt', N) or (scheme, 0) of a
    PEM EncryptedPrivateKeyInfo, read from its DER (not from what wrote it)."""
    _, _, der = asn1_pem.unarmor(pem)
    algorithm = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]
    if algorithm["algorithm"].native != "pbes2":
        return algorithm["algorithm"].native, 0
    kdf = algorithm["parameters"]["key_derivation_func"]
    if kdf["algorithm"].native == "pbkdf2":
        params = kdf["parameters"]
        return f"pbkdf2-{params['prf']['algorithm'].native}", int(params["iteration_count"].native)
    if kdf["algorithm"].native == "scrypt":
        return "scrypt", int(kdf["parameters"]["cost_parameter"].native)
    return str(kdf["algorithm"].native), 0


def is_weak(pem: bytes) -> bool:
    """True for a key file older versions wrote (fewer PBKDF2 rounds than KDF_ROUNDS, or SHA-1)."""
    scheme, rounds = kdf_of(pem)
    if scheme == "scrypt":
        return rounds < 2**15
    return scheme != "pbkdf2-sha256" or rounds < KDF_ROUNDS


class KeyBackend(Protocol):
    def generate(self, key_ref: str, algorithm: str) -> CAPrivateKey: ...

    def load(self, key_ref: str) -> CAPrivateKey: ...

    def exists(self, key_ref: str) -> bool: ...

    def check(self, key_ref: str) -> None: ...

    def check_all(self) -> None: ...

    def signer(self, key_ref: str) -> Signer: ...


def new_private_key(algorithm: str) -> CAPrivateKey:
    """algorithm: 'ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072' or 'rsa-4096'."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if algorithm.startswith("rsa-") and algorithm[4:] in {"2048", "3072", "4096"}:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[4:]))
    raise KeyUnavailable(f"unsupported key algorithm {algorithm!r}")


Passphrase = bytes | Callable[[], bytes]


def _resolve(passphrase: Passphrase) -> bytes:
    return passphrase() if callable(passphrase) else passphrase


class EncryptedFileKeyBackend:
    """Keys as encrypted PKCS#8 files `<directory>/<key_ref>.key.pem`. `passphrase` unlocks the
    online keys, `root_passphrase` the root keys (`root-N`); either may be a callable, asked
    only when such a key is first used (the API never asks for the root's)."""

    def __init__(self, directory: Path, passphrase: Passphrase, root_passphrase: Passphrase | None = None) -> None:
        self.directory = directory
        self._passphrase = passphrase
        self._root_passphrase = root_passphrase
        self._cache: dict[str, CAPrivateKey] = {}

    def _path(self, key_ref: str) -> Path:
        if not key_ref or "/" in key_ref or key_ref.startswith("."):
            raise KeyUnavailable(f"invalid key reference {key_ref!r}")
        return self.directory / f"{key_ref}.key.pem"

    def _secret(self, key_ref: str) -> bytes:
        if is_root_ref(key_ref) and self._root_passphrase is not None:
            return _resolve(self._root_passphrase)
        return _resolve(self._passphrase)

    def exists(self, key_ref: str) -> bool:
        return self._path(key_ref).exists()

    def _write(self, path: Path, pem: bytes) -> None:
        """temp file (0600) + fsync + rename: never a half-written key."""
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def generate(self, key_ref: str, algorithm: str) -> CAPrivateKey:
        path = self._path(key_ref)
        if path.exists():
            raise KeyUnavailable(f"key {key_ref!r} already exists; refusing to overwrite it")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = new_private_key(algorithm)
        self._write(path, encrypt_pkcs8(key, self._secret(key_ref)))
        self._cache[key_ref] = key
        return key

    def check(self, key_ref: str) -> None:
        path = self._path(key_ref)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyUnavailable(f"CA key file {path} is missing") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyUnavailable(f"CA key file {path} is readable by group or others; run: chmod 600 {path}")

    def check_all(self) -> None:
        """Every key file in the directory: mode 600 (a backup or retired key is still a key)."""
        for path in sorted(self.directory.glob("*.key.pem")) if self.directory.exists() else []:
            self.check(path.name.removesuffix(".key.pem"))

    def signer(self, key_ref: str) -> Signer:
        """The key as a Signer (ca_service.pki.signer): what callers should use instead of load()."""
        return KeySigner(key_ref, self.load(key_ref))

    def _decrypt(self, key_ref: str, data: bytes) -> tuple[CAPrivateKey, bool]:
        """The key, and whether it was under the online passphrase although it is a root key
        (the layout before CA_ROOT_KEY_PASSPHRASE: `ca rekey-files` moves it)."""
        candidates = [(self._secret(key_ref), False)]
        if is_root_ref(key_ref) and self._root_passphrase is not None:
            candidates.append((_resolve(self._passphrase), True))
        for secret, legacy in candidates:
            try:
                key = serialization.load_pem_private_key(data, password=secret)
            except (ValueError, TypeError):
                continue
            if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
                raise KeyUnavailable(f"CA key {key_ref!r} is of an unsupported type")
            return key, legacy
        which = "root key passphrase (CA_ROOT_KEY_PASSPHRASE)" if is_root_ref(key_ref) else "CA key passphrase"
        raise KeyUnavailable(f"CA key {key_ref!r} cannot be decrypted: wrong {which}?")

    def load(self, key_ref: str) -> CAPrivateKey:
        cached = self._cache.get(key_ref)
        if cached is not None:
            return cached
        self.check(key_ref)
        data = self._path(key_ref).read_bytes()
        key, legacy = self._decrypt(key_ref, data)
        if legacy or is_weak(data):
            log.warning("CA key %s is stored with an old encryption: run `ca-service ca rekey-files`", key_ref)
        self._cache[key_ref] = key
        return key

    def rekey(self, key_ref: str) -> bool:
        """Rewrite one key file with the current KDF and the right passphrase (root keys under
        the root's); False if it already was. The key itself does not change."""
        path = self._path(key_ref)
        self.check(key_ref)
        data = path.read_bytes()
        key, legacy = self._decrypt(key_ref, data)
        if not legacy and not is_weak(data):
            return False
        self._write(path, encrypt_pkcs8(key, self._secret(key_ref)))
        log.info("re-encrypted CA key %s (PBKDF2-SHA256, %s rounds)", key_ref, KDF_ROUNDS)
        return True

    def key_refs(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.name.removesuffix(".key.pem") for p in self.directory.glob("*.key.pem"))
