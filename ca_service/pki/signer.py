"""The signing interface (DESIGN §3 "Key custody"): code asks a key backend for a `Signer` and
asks it to sign; nothing outside a key backend ever holds a private key.

A `Signer` signs the four things a CA signs: certificates, CRLs, OCSP responses, and raw bytes
(the spliced TBS of a large CRL, audit checkpoints). `KeySigner` implements it over any object
that behaves as a `cryptography` private key: a decrypted file key (`file` backend) or a
token-backed key whose `sign()` sends the digest to the HSM (`pkcs11` backend). cryptography's
builders accept either, so both backends share this one implementation of the signing calls.
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509
from cryptography.x509 import ocsp

from ca_service.pki.signing import CAPrivateKey, CAPublicKey, hash_for_key, sign_bytes, verify_bytes


class Signer(Protocol):
    """A CA (or responder, or audit) key that signs, by reference; never exposes the key."""

    @property
    def key_ref(self) -> str: ...

    def public_key(self) -> CAPublicKey: ...

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate: ...

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList: ...

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse: ...

    def sign_bytes(self, data: bytes) -> bytes:
        """A signature over `data` as X.509 structures carry it: ECDSA (DER) or RSA PKCS#1 v1.5,
        with the key's hash (SHA-384 for P-384, else SHA-256)."""
        ...

    def verify_bytes(self, signature: bytes, data: bytes) -> None:
        """InvalidSignature unless `signature` is this key's sign_bytes over `data`."""
        ...


class KeyBackend(Protocol):
    """Where CA keys live (CA_KEY_BACKEND): `file` (encrypted PKCS#8) or `pkcs11` (an HSM)."""

    def generate(self, key_ref: str, algorithm: str) -> Signer:
        """Create key `key_ref` ('ec-p256', 'ec-p384', 'rsa-2048|3072|4096'); refuse an existing one."""
        ...

    def signer(self, key_ref: str) -> Signer:
        """The signer of an existing key; KeyUnavailable if it is missing or cannot be unlocked."""
        ...

    def exists(self, key_ref: str) -> bool: ...

    def check(self, key_ref: str) -> None:
        """Raise KeyUnavailable if the key is missing, exposed or unusable."""
        ...

    def check_all(self) -> None:
        """Raise KeyUnavailable for any stored key that is exposed (e.g. a key file group-readable)."""
        ...


class KeySigner:
    """A Signer over a private-key object (a file key, or a token-backed key)."""

    __slots__ = ("_key", "_key_ref")

    def __init__(self, key_ref: str, private_key: CAPrivateKey) -> None:
        self._key_ref = key_ref
        self._key = private_key

    @property
    def key_ref(self) -> str:
        return self._key_ref

    def public_key(self) -> CAPublicKey:
        return self._key.public_key()

    def sign_certificate(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        return builder.sign(self._key, hash_for_key(self._key))

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder) -> x509.CertificateRevocationList:
        return builder.sign(self._key, hash_for_key(self._key))

    def sign_ocsp_response(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        return builder.sign(self._key, hash_for_key(self._key))

    def sign_bytes(self, data: bytes) -> bytes:
        return sign_bytes(self._key, data)

    def verify_bytes(self, signature: bytes, data: bytes) -> None:
        verify_bytes(self._key, signature, data)

    def __repr__(self) -> str:  # never the key material
        return f"KeySigner({self._key_ref!r})"
