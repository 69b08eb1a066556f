"""The root CA's CRL, signed through a Signer at a ceremony (the root key is offline)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service.pki.crl import RevokedEntry, _revoked_certificates
from ca_service.pki.signer import Signer


def build_root_crl(
    *,
    issuer_cert: x509.Certificate,
    signer: Signer,
    entries: Iterable[RevokedEntry],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """DER of an X.509 v2 CRL of `issuer_cert` (CRL Number, AKI; reasonCode per entry) signed by
    `signer`; ValueError if the signer's key is not the certificate's."""
    if signer.public_key() != issuer_cert.public_key():
        raise ValueError("the signer's key is not the key of the root certificate")
    if not this_update < next_update:
        raise ValueError("nextUpdate must be after thisUpdate")
    ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder(revoked_certificates=_revoked_certificates(entries))
        .issuer_name(issuer_cert.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return signer.sign_crl(builder).public_bytes(serialization.Encoding.DER)
