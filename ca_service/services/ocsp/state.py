"""The OCSP responder's per-process state (`ctx.local(OcspState)`): the issuing CAs it matches
requests against, its LRU of signed responses, the invalidation watch that keeps that LRU fresh
(invalidation.py), and the breaker that skips Redis while it is down (cache.py)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ca_service.background_watch import BackgroundWatch
from ca_service.per_process import Breaker, Lru
from ca_service.pki.ocsp import issuer_hashes

LOCAL_ENTRIES = 20_000  # per process: ~20 MB (a response with its responder certificate is ~1 KB)
BREAKER_SECONDS = 5.0  # Redis skipped this long after an error


@dataclass(frozen=True)
class CachedResponse:
    status: str
    next_update: datetime
    der: bytes
    checked: bool = True  # False: read from Redis, its DER not yet compared with the request and the database


@dataclass
class IssuerIndex:
    """The issuing CAs held, and their CertID hashes per hash algorithm (filled lazily)."""

    issuers: list[tuple[int, x509.Certificate]]
    loaded_at: float
    by_hash: dict[str, dict[tuple[bytes, bytes], int]] = field(default_factory=dict)

    def match(self, algorithm: hashes.HashAlgorithm, name_hash: bytes, key_hash: bytes) -> int | None:
        table = self.by_hash.get(algorithm.name)
        if table is None:
            table = {issuer_hashes(cert, algorithm): issuer_id for issuer_id, cert in self.issuers}
            self.by_hash[algorithm.name] = table
        return table.get((name_hash, key_hash))


@dataclass
class OcspState:
    issuers: IssuerIndex | None = None  # the issuing CAs held and their CertID hashes
    issuers_lock: threading.Lock = field(default_factory=threading.Lock)
    local: Lru[str, CachedResponse] = field(default_factory=lambda: Lru(LOCAL_ENTRIES))
    issuer_tags: dict[int, str] = field(default_factory=dict)  # issuer id -> SKI hex (the Redis key's issuer)
    redis: Breaker = field(default_factory=lambda: Breaker(BREAKER_SECONDS))
    # Pre-signed responses (invalidation.py): on in API servers (api/app.py), off in tests' apps
    presigned: bool = False
    watch: BackgroundWatch = field(default_factory=lambda: BackgroundWatch("ocsp-invalidation"))
    revocation_counts: dict[int, int] = field(default_factory=dict)  # CA id -> counter, at the last poll
    generation: int = 0  # bumped by every drop: a status read before it is not cached after it
    cleared_at: int = 0  # the generation of the last drop of the whole LRU
    dropped: dict[str, int] = field(default_factory=dict)  # key -> generation of its last drop
    generation_lock: threading.Lock = field(default_factory=threading.Lock)
