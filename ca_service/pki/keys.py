"""Private-key storage behind one interface.

Callers ask a `KeyBackend` for a signing key by reference; they never see files or passphrases.
`EncryptedFileKeyBackend` keeps PKCS#8 PEM encrypted with the CA passphrase, mode 0600, and
refuses keys that group or others can read. A PKCS#11 backend implements the same protocol.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca_service.pki.signer import KeySigner, Signer
from ca_service.pki.signing import CAPrivateKey


class KeyError_(Exception):
    """A key could not be created or loaded; message is safe to show an operator."""


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
    raise KeyError_(f"unsupported key algorithm {algorithm!r}")


class EncryptedFileKeyBackend:
    def __init__(self, directory: Path, passphrase: bytes) -> None:
        self.directory = directory
        self._passphrase = passphrase
        self._cache: dict[str, CAPrivateKey] = {}

    def _path(self, key_ref: str) -> Path:
        if not key_ref or "/" in key_ref or key_ref.startswith("."):
            raise KeyError_(f"invalid key reference {key_ref!r}")
        return self.directory / f"{key_ref}.key.pem"

    def exists(self, key_ref: str) -> bool:
        return self._path(key_ref).exists()

    def generate(self, key_ref: str, algorithm: str) -> CAPrivateKey:
        path = self._path(key_ref)
        if path.exists():
            raise KeyError_(f"key {key_ref!r} already exists; refusing to overwrite it")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = new_private_key(algorithm)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self._cache[key_ref] = key
        return key

    def check(self, key_ref: str) -> None:
        path = self._path(key_ref)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise KeyError_(f"CA key file {path} is missing") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyError_(f"CA key file {path} is readable by group or others; run: chmod 600 {path}")

    def check_all(self) -> None:
        """Every key file in the directory: mode 600 (a backup or retired key is still a key)."""
        for path in sorted(self.directory.glob("*.key.pem")) if self.directory.exists() else []:
            self.check(path.name.removesuffix(".key.pem"))

    def signer(self, key_ref: str) -> Signer:
        """The key as a Signer (ca_service.pki.signer): what callers should use instead of load()."""
        return KeySigner(key_ref, self.load(key_ref))

    def load(self, key_ref: str) -> CAPrivateKey:
        cached = self._cache.get(key_ref)
        if cached is not None:
            return cached
        self.check(key_ref)
        data = self._path(key_ref).read_bytes()
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase)
        except (ValueError, TypeError):
            raise KeyError_(f"CA key {key_ref!r} cannot be decrypted: wrong CA key passphrase?") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyError_(f"CA key {key_ref!r} is of an unsupported type")
        self._cache[key_ref] = key
        return key
