"""X.509 v2 CRLs (RFC 5280 §5), built and signed with `cryptography`.

build_crl hands the whole list of revoked certificates to the builder's constructor in one call:
adding entries one by one copies the builder each time and is quadratic.
It is linear, with most of the time and memory spent in cryptography creating one
RevokedCertificate per entry. build_large_crl (crl_fast) is the faster path for large CRLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service.pki.crl_fast import encode_entries, splice_crl, utc_timestamp_text
from ca_service.pki.reasons import REASONS, to_reason_flag
from ca_service.pki.signer import Signer


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str  # an API reason name; `unspecified` is encoded by omitting reasonCode


@dataclass(frozen=True, slots=True)
class CrlInfo:
    crl_number: int
    this_update: datetime
    next_update: datetime | None
    entries: int


_MAX_INTEGER = 2**159  # serials and CRL numbers: positive, at most 20 octets (RFC 5280 §4.1.2.2, §5.2.3)


def _reason_extensions() -> dict[str, list[x509.Extension[x509.ExtensionType]]]:
    """One shared crlEntryExtensions list per reason (entries only read it): `unspecified` has none."""
    table: dict[str, list[x509.Extension[x509.ExtensionType]]] = {}
    for name in REASONS:
        flag = to_reason_flag(name)
        reason = x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(flag))
        table[name] = [] if flag is x509.ReasonFlags.unspecified else [reason]
    return table


_REASON_EXTENSIONS = _reason_extensions()


def _revoked_certificates(entries: Iterable[RevokedEntry]) -> list[x509.RevokedCertificate]:
    """cryptography's RevokedCertificate per entry. The builder is constructed with all its fields
    (the setter chain makes three builders per entry and is slower), so the
    checks the setters would make on the serial are made here; datetimes may be aware (any
    offset) or naive UTC, as everywhere in cryptography."""
    revoked = []
    for entry in entries:
        if not 0 < entry.serial < _MAX_INTEGER:
            raise ValueError(f"serial {entry.serial:#x} is not a positive integer of at most 159 bits")
        try:
            extensions = _REASON_EXTENSIONS[entry.reason]
        except KeyError:
            raise ValueError(f"unknown revocation reason {entry.reason!r} for serial {entry.serial:#x}") from None
        revoked.append(x509.RevokedCertificateBuilder(entry.serial, entry.revoked_at, extensions).build())
    return revoked


def build_crl(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: Signer,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """Sign an X.509 v2 CRL for `issuer_cert` and return it DER-encoded.

    issuer = issuer_cert's subject; extensions CRL Number and Authority Key Identifier (the
    issuer's Subject Key Identifier); per entry serial, revocation date and reasonCode (absent
    for `unspecified`). `entries` may be a generator (e.g. rows streamed from the database):
    it is read once. Serials are not de-duplicated: the caller's store has them unique.
    ValueError for a key that is not the certificate's, a CA certificate without SKI, a bad
    serial, reason or CRL number, or next_update before this_update.
    """
    if not 0 <= crl_number < _MAX_INTEGER:
        raise ValueError("the CRL number is a non-negative integer of at most 159 bits")
    if issuer_key.public_key() != issuer_cert.public_key():
        raise ValueError("issuer_key is not the key of issuer_cert")
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ValueError("issuer_cert has no Subject Key Identifier for the CRL's AKI") from None
    # The list goes to the constructor: add_revoked_certificate copies it per call (quadratic).
    # The setters after it pass the list on untouched, and check and normalise the dates.
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=_revoked_certificates(entries))
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    crl = issuer_key.sign_crl(builder)
    return crl.public_bytes(serialization.Encoding.DER)


def build_large_crl(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: Signer,
    entries: Iterable[tuple[str, str, str]],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """The same CRL as build_crl, in linear time for any size (see crl_fast). `entries` are
    (serial hex, UTC 'YYYYMMDDHHMMSS', reason name) rows, as the database can produce them."""
    template = x509.load_der_x509_crl(
        build_crl(
            issuer_cert=issuer_cert, issuer_key=issuer_key, entries=(), crl_number=crl_number,
            this_update=this_update, next_update=next_update,
        )
    )  # fmt: skip
    return splice_crl(template, encode_entries(entries), issuer_key)


def as_text_entries(entries: Iterable[RevokedEntry]) -> list[tuple[str, str, str]]:
    return [(format(e.serial, "x"), utc_timestamp_text(e.revoked_at), e.reason) for e in entries]


def crl_info(der: bytes) -> CrlInfo:
    crl = x509.load_der_x509_crl(der)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    return CrlInfo(number, crl.last_update_utc, crl.next_update_utc, len(crl))
