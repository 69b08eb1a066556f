"""Key types CA and responder keys may have, and the signature hash each one uses."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

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
