"""Proof of the current key for a REST renewal: the new CSR's DER signed
with the private key of the certificate being renewed -- ECDSA with SHA-256 for an EC key, RSA
PKCS#1 v1.5 with SHA-256 for an RSA key. Pure crypto: the caller passes the bytes."""

from __future__ import annotations

import base64
import binascii

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MAX_SIGNATURE_BYTES = 1024  # RSA 4096: 512 bytes; ECDSA P-384 DER: ~104


def decode_signature(text: str) -> bytes | None:
    """The signature's bytes from standard base64 (padding required), or None if it is not that."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if 0 < len(raw) <= MAX_SIGNATURE_BYTES else None


def csr_der(csr_pem: str) -> bytes | None:
    """The DER of a PEM CSR (what the proof signs), or None if it does not parse."""
    try:
        return x509.load_pem_x509_csr(csr_pem.encode("utf-8", errors="replace")).public_bytes(serialization.Encoding.DER)
    except (ValueError, TypeError):
        return None


def signed_by_certificate_key(certificate_der: bytes, data: bytes, signature: bytes) -> bool:
    """Whether `signature` over `data` verifies with the public key of the certificate."""
    key = x509.load_der_x509_certificate(certificate_der).public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
