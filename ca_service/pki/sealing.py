"""Sealing small secrets at rest with a key derived from a configured secret: Fernet (AES-128-CBC
+ HMAC-SHA256, from `cryptography`) under HKDF-SHA256(secret, info=purpose). Used for the console
operators' TOTP seeds, so that whoever reads the database (a backup, a DBA) does not get the
second factor with it; the key is CA_CONSOLE_SECRET_KEY, which lives outside the database."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "f1:"  # the scheme, so that another one can follow


class Unsealable(Exception):
    """The value is not sealed, was altered, or was sealed under another secret."""


def _fernet(secret: bytes, purpose: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: bytes, purpose: bytes, plaintext: str) -> str:
    return PREFIX + _fernet(secret, purpose).encrypt(plaintext.encode()).decode("ascii")


def unseal(secret: bytes, purpose: bytes, sealed: str) -> str:
    if not sealed.startswith(PREFIX):
        raise Unsealable("the value is not sealed")
    try:
        return _fernet(secret, purpose).decrypt(sealed[len(PREFIX) :].encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise Unsealable("the value was altered or sealed under another secret") from exc
