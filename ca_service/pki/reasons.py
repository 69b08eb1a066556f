"""Revocation reasons: the API's names <-> RFC 5280 CRLReason (§5.3.1).

Only these six reasons exist in the API. `unspecified` is never encoded: RFC 5280 §5.3.1 says
the reasonCode extension SHOULD be absent instead, so CRL entries and OCSP responses for it
carry no reason at all (and reading back an entry without a reason gives `unspecified`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from cryptography import x509

from ca_service.constants import RevocationReason

_FLAGS: Final = MappingProxyType({str(reason): x509.ReasonFlags[reason.value] for reason in RevocationReason})
REASONS: Final[tuple[str, ...]] = tuple(_FLAGS)
# The reasons a caller (front end, operator, console, CLI) may give: `superseded` is the renewal's
# own reason, written only by a renewal (given by a caller, it would also escape the revocation brake).
CALLER_REASONS: Final[tuple[str, ...]] = tuple(r for r in REASONS if r != RevocationReason.SUPERSEDED)
_NAMES: Final = MappingProxyType({flag: name for name, flag in _FLAGS.items()})


def to_reason_flag(name: str) -> x509.ReasonFlags:
    """The CRLReason for an API reason name; ValueError for anything else."""
    try:
        return _FLAGS[name]
    except KeyError:
        raise ValueError(f"unknown revocation reason {name!r}; expected one of {', '.join(REASONS)}") from None


def from_reason_flag(flag: x509.ReasonFlags | None) -> str:
    """The API name for a CRLReason; None (no reasonCode) is `unspecified`.

    Reasons the API never issues (caCompromise, certificateHold, removeFromCRL, aACompromise)
    raise ValueError rather than being silently relabelled."""
    if flag is None:
        return "unspecified"
    try:
        return _NAMES[flag]
    except KeyError:
        raise ValueError(f"revocation reason {flag.value!r} has no API name") from None
