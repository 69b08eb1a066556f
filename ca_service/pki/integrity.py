"""Message authentication for what the service stores where others can write.

Redis (cached OCSP responses) and the database (audit events) are trusted for availability, not
for correctness: a Redis writer or a database writer must not be able to make the service serve,
or seal, something it did not write itself. So what the service writes there carries an
HMAC-SHA256 under a key neither holds: HKDF-SHA256 of one 32-byte secret kept in a file in the
data directory (CA_DATA_DIR/integrity.key, 0600; or CA_INTEGRITY_KEY_FILE), one derived key per
purpose. `init` creates it (else the first use does); every process of a deployment must see the
same file (like the CA keys). An HMAC costs about a microsecond: cheap enough for every audit event.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_BYTES = 32


class IntegrityKeyError(Exception):
    """The integrity key file cannot be read or created, or holds no usable secret."""


def _read_or_create(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise IntegrityKeyError(f"cannot create the integrity key {path}: {exc.strerror}") from exc
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
    try:
        secret = path.read_bytes()
    except OSError as exc:
        raise IntegrityKeyError(f"cannot read the integrity key {path}: {exc.strerror}") from exc
    if len(secret) < SECRET_BYTES:  # a racing creator has not written it yet, or it was truncated
        raise IntegrityKeyError(f"the integrity key {path} holds fewer than {SECRET_BYTES} bytes")
    return secret


def _encode(parts: tuple[bytes, ...]) -> bytes:
    """Length-prefixed, so no two different part lists give the same message."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


class IntegrityKeys:
    """The per-purpose MAC keys of one process (read once, lazily)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def key(self, purpose: str) -> bytes:
        found = self._keys.get(purpose)
        if found is None:
            with self._lock:
                secret = _read_or_create(self.path)
                found = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(secret)
                self._keys[purpose] = found
        return found

    def mac(self, purpose: str, *parts: bytes) -> bytes:
        return hmac.new(self.key(purpose), _encode(parts), hashlib.sha256).digest()

    def verify(self, purpose: str, tag: bytes, *parts: bytes) -> bool:
        return hmac.compare_digest(self.mac(purpose, *parts), tag)
