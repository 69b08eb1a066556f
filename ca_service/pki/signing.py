"""Key types CA and responder keys may have, and the signature hash each one uses."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

CAPrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
CAPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


def hash_for_key(private_key: CAPrivateKey) -> hashes.SHA256 | hashes.SHA384:
    """SHA-256 for EC P-256 and RSA keys, SHA-384 for EC P-384 keys; ValueError for other curves
    (no CA key is created on them, and guessing a hash would hide the mistake)."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return hashes.SHA256()
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP256R1):
            return hashes.SHA256()
        if isinstance(private_key.curve, ec.SECP384R1):
            return hashes.SHA384()
        raise ValueError(f"unsupported CA key curve {private_key.curve.name}")
    raise TypeError(f"unsupported CA key type {type(private_key).__name__}")


def sign_bytes(private_key: CAPrivateKey, data: bytes) -> bytes:
    """A signature over `data` as X.509 structures carry it (ECDSA, or RSA PKCS#1 v1.5), with the
    key's hash."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hash_for_key(private_key))
    return private_key.sign(data, ec.ECDSA(hash_for_key(private_key)))


def verify_bytes(private_key: CAPrivateKey, signature: bytes, data: bytes) -> None:
    """Check a sign_bytes signature with the key's public half; InvalidSignature if it is wrong."""
    public_key = private_key.public_key()
    if isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hash_for_key(private_key))
    else:
        public_key.verify(signature, data, ec.ECDSA(hash_for_key(private_key)))
