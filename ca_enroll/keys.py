"""Keys, CSRs and PKCS#12 files. A private key only ever reaches the disk encrypted: inside a
PKCS#12 (AES-256-CBC, PBKDF2-SHA256, HMAC-SHA256) or an encrypted PEM, in a 0700 directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.x509.oid import NameOID

PKCS12_ROUNDS = 200_000


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(key: ec.EllipticCurvePrivateKey, login_id: str) -> x509.CertificateSigningRequest:
    """The CA builds the subject itself (§3); the CSR names the login ID only for the record."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, login_id)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())


def pkcs12_bytes(name: str, key: PrivateKeyTypes, cert: x509.Certificate, chain: list[x509.Certificate], password: str) -> bytes:
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, chain or None, encryption)  # type: ignore[arg-type]


@contextmanager
def private_dir() -> Iterator[Path]:
    """A 0700 temporary directory, removed with everything in it however the block ends."""
    path = Path(tempfile.mkdtemp(prefix="ca-enroll-"))
    try:
        path.chmod(0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
