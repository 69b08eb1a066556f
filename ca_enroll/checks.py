"""What the app checks before it installs anything (DESIGN §4c): the certificate chains to the
CA certificates that `cacerts` returned, names the login ID, is for the key this app made, is
inside its validity and is a client-authentication certificate."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca_enroll.errors import EnrollError, Exit

MAX_CHAIN = 5


def login_id_of(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if len(names) == 1 else None


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]


def chain_of(leaf: x509.Certificate, cas: list[x509.Certificate], now: datetime) -> list[x509.Certificate]:
    """The path leaf -> ... -> a self-signed CA of `cas`, each link's signature checked, each CA
    inside its validity and a CA (BasicConstraints), or CHECK_FAILED."""
    path: list[x509.Certificate] = []
    current = leaf
    for _ in range(MAX_CHAIN):
        parent = next((ca for ca in cas if _signed_by(current, ca)), None)
        if parent is None or not _valid_ca(parent, now):
            break
        path.append(parent)
        if parent.issuer == parent.subject:
            return path
        current = parent
    raise EnrollError(Exit.CHECK_FAILED, "check-failed", reason_key="check-chain")


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _valid_ca(ca: x509.Certificate, now: datetime) -> bool:
    try:
        is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False
    return bool(is_ca) and ca.not_valid_before_utc <= now <= ca.not_valid_after_utc


def check_issued(
    cert: x509.Certificate, *, login_id: str, key: PrivateKeyTypes, cas: list[x509.Certificate], now: datetime | None = None
) -> list[x509.Certificate]:
    """Every check of §4c on a certificate the server sent; returns its chain (issuing CA first)."""
    moment = now or datetime.now(UTC)
    chain = chain_of(cert, cas, moment)
    if login_id_of(cert) != login_id:
        raise EnrollError(Exit.CHECK_FAILED, "check-failed", reason_key="check-cn", login_id=login_id)
    if _spki(cert.public_key()) != _spki(key.public_key()):
        raise EnrollError(Exit.CHECK_FAILED, "check-failed", reason_key="check-key")
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise EnrollError(Exit.CHECK_FAILED, "check-failed", reason_key="check-validity")
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise EnrollError(Exit.CHECK_FAILED, "check-failed", reason_key="check-eku")
    return chain
