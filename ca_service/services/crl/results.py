"""What a CRL publication reports, for the issuing CAs' CRLs (crl/publication.py) and the offline
root's (crl/root.py) alike: its own module so that publication can serve the root's CRL without
the root importing publication back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CrlResult:
    ca_name: str
    crl_number: int
    this_update: datetime
    next_update: datetime
    entries: int
    published: bool  # False: the latest CRL already covered every revocation
