"""CSR checks: parse, proof of possession, key policy. Nothing in a CSR but its key is trusted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

MAX_CSR_PEM_BYTES = 16 * 1024


class CSRRejected(Exception):
    """code is one of: invalid-csr, csr-signature-invalid, weak-signature-algorithm, key-rejected."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


ClientPublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class CheckedCSR:
    public_key: ClientPublicKey
    spki_sha256: str  # hex SHA-256 of the DER SubjectPublicKeyInfo: identifies a key across certificates
    key_description: str  # e.g. "EC P-256", "RSA 2048"


def spki_sha256(public_key: ClientPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _key_policy(public_key: object) -> tuple[ClientPublicKey, str]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve
        if isinstance(curve, ec.SECP256R1):
            return public_key, "EC P-256"
        if isinstance(curve, ec.SECP384R1):
            return public_key, "EC P-384"
        raise CSRRejected("key-rejected", f"EC curve {curve.name} is not accepted; use P-256 or P-384")
    if isinstance(public_key, rsa.RSAPublicKey):
        size = public_key.key_size
        exponent = public_key.public_numbers().e
        if not 2048 <= size <= 4096:
            raise CSRRejected("key-rejected", f"RSA key size {size} is not accepted; use 2048 to 4096 bits")
        if exponent != 65537:
            raise CSRRejected("key-rejected", f"RSA public exponent {exponent} is not accepted; use 65537")
        return public_key, f"RSA {size}"
    kind = type(public_key).__name__.removeprefix("_").replace("PublicKey", "")
    raise CSRRejected("key-rejected", f"{kind or 'this'} keys are not accepted; use EC P-256/P-384 or RSA 2048-4096")


# Collision-broken digests: a signature over them proves nothing about who holds the key.
_WEAK_DIGESTS = {"md5": "MD5", "sha1": "SHA-1", "md2": "MD2", "md4": "MD4"}


def _signature_policy(csr: x509.CertificateSigningRequest) -> None:
    try:
        digest = csr.signature_hash_algorithm
    except Exception:  # an algorithm cryptography does not know (e.g. MD2): name it from the OID
        name = csr.signature_algorithm_oid._name.lower()
        weak = next((label for key, label in _WEAK_DIGESTS.items() if name.startswith(key)), None)
        if weak:
            raise CSRRejected("weak-signature-algorithm", _weak(weak)) from None
        return
    if isinstance(digest, hashes.MD5 | hashes.SHA1):
        raise CSRRejected("weak-signature-algorithm", _weak(_WEAK_DIGESTS[digest.name]))


def _weak(label: str) -> str:
    return f"the CSR is signed with {label}, which is broken; sign it with SHA-256 or better"


def check_csr(pem: str) -> CheckedCSR:
    """Parse a PEM CSR, verify its self-signature and apply the key policy."""
    data = pem.encode("utf-8", errors="replace")
    if len(data) > MAX_CSR_PEM_BYTES:
        raise CSRRejected("invalid-csr", f"the CSR is larger than {MAX_CSR_PEM_BYTES} bytes")
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
        raise CSRRejected("invalid-csr", "csr must be a PEM 'CERTIFICATE REQUEST' block")
    try:
        csr = x509.load_pem_x509_csr(data)
        public_key = csr.public_key()
    except (ValueError, TypeError, x509.UnsupportedGeneralNameType):
        raise CSRRejected("invalid-csr", "the CSR could not be parsed") from None
    except Exception:  # cryptography raises several unsupported-algorithm types
        raise CSRRejected("key-rejected", "the CSR's key algorithm is not supported") from None
    key, description = _key_policy(public_key)
    _signature_policy(csr)
    try:
        valid = csr.is_signature_valid
    except Exception:
        valid = False
    if not valid:
        raise CSRRejected("csr-signature-invalid", "the CSR signature does not verify with its own key (proof of possession)")
    return CheckedCSR(public_key=key, spki_sha256=spki_sha256(key), key_description=description)
