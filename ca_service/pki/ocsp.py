"""OCSP (RFC 6960) requests and responses, and the delegated responder certificate profile.

Unsupported CertID hash algorithms: cryptography can read and echo a CertID made with SHA-1,
SHA-224, SHA-256, SHA-384 or SHA-512 only. Any other one (MD5, SHA-3, ...) makes parse_request
raise UnsupportedCertIDHash, a MalformedOCSPRequest, so the caller answers malformedRequest: an
`unknown` single response would have to repeat the CertID with that algorithm, which cannot be
built, and a CertID made with a hash we do not compute cannot name one of our CAs anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca_service.pki.profile import DIGITAL_SIGNATURE_ONLY
from ca_service.pki.reasons import to_reason_flag
from ca_service.pki.signer import Signer
from ca_service.pki.signing import CAPublicKey

OCSPStatus = Literal["good", "revoked", "unknown"]
ErrorStatus = Literal[
    "malformed_request",
    "internal_error",
    "try_later",
    "sig_required",
    "unauthorized",
    # RFC 6960 spellings, as the responder service and its metrics label them
    "malformedRequest",
    "internalError",
    "tryLater",
    "sigRequired",
]
SUPPORTED_CERTID_HASHES: Final[Mapping[str, Callable[[], hashes.HashAlgorithm]]] = MappingProxyType(
    {
        "sha1": hashes.SHA1,
        "sha224": hashes.SHA224,
        "sha256": hashes.SHA256,
        "sha384": hashes.SHA384,
        "sha512": hashes.SHA512,
    }
)
MAX_REQUEST_BYTES: Final = 8192  # one unsigned single request is ~100 bytes
MAX_NONCE_BYTES: Final = 32  # RFC 8954 §2.1: a nonce is 1 to 32 octets
_CERT_STATUS: Final = MappingProxyType(
    {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED, "unknown": ocsp.OCSPCertStatus.UNKNOWN}
)
_ERROR_STATUS: Final = MappingProxyType(
    {
        "malformed_request": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        "internal_error": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
        "try_later": ocsp.OCSPResponseStatus.TRY_LATER,
        "sig_required": ocsp.OCSPResponseStatus.SIG_REQUIRED,
        "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED,
        "malformedRequest": ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        "internalError": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
        "tryLater": ocsp.OCSPResponseStatus.TRY_LATER,
        "sigRequired": ocsp.OCSPResponseStatus.SIG_REQUIRED,
    }
)


class MalformedOCSPRequest(Exception):
    """Not a well-formed OCSP request for exactly one certificate: answer malformedRequest."""


class UnsupportedCertIDHash(MalformedOCSPRequest):
    """The CertID's hash algorithm is not SHA-1/SHA-2 (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class ParsedOCSPRequest:
    hash_algorithm: hashes.HashAlgorithm  # of the CertID; its name is `hash_name`
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int
    nonce: bytes | None
    ocsp_request: ocsp.OCSPRequest = field(compare=False, repr=False)

    @property
    def hash_name(self) -> str:
        """'sha1', 'sha256', ... (a key of SUPPORTED_CERTID_HASHES)."""
        return self.hash_algorithm.name


def parse_request(der: bytes) -> ParsedOCSPRequest:
    """Parse a DER OCSPRequest (RFC 6960 §4.1).

    MalformedOCSPRequest for empty, oversized (> MAX_REQUEST_BYTES) or unparseable input, a
    request for several certificates, hashes of the wrong length, a duplicated or unreadable
    extension, or a nonce that is empty or longer than 32 octets; UnsupportedCertIDHash (a
    subclass) for a CertID hash other than SHA-1/SHA-2. A request signature is not checked."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise MalformedOCSPRequest("empty or oversized request")
    try:
        request = ocsp.load_der_ocsp_request(der)
    except NotImplementedError as exc:  # "OCSP request contains more than one request"
        raise MalformedOCSPRequest(str(exc)) from None
    except ValueError as exc:
        raise MalformedOCSPRequest(f"not a DER OCSP request: {exc}") from None
    try:
        algorithm = request.hash_algorithm
    except UnsupportedAlgorithm as exc:
        raise UnsupportedCertIDHash(str(exc)) from None
    if algorithm.name not in SUPPORTED_CERTID_HASHES:
        raise UnsupportedCertIDHash(f"unsupported CertID hash {algorithm.name}")
    name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
    if len(name_hash) != algorithm.digest_size or len(key_hash) != algorithm.digest_size:
        raise MalformedOCSPRequest(f"CertID hashes are not {algorithm.name} digests")
    try:
        nonce: bytes | None = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        nonce = None
    except (ValueError, x509.DuplicateExtension) as exc:
        raise MalformedOCSPRequest(f"bad request extensions: {exc}") from None
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_BYTES:
        raise MalformedOCSPRequest(f"nonce of {len(nonce)} octets (RFC 8954: 1 to {MAX_NONCE_BYTES})")
    return ParsedOCSPRequest(algorithm, name_hash, key_hash, request.serial_number, nonce, request)


def issuer_hashes(issuer_cert: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CertID naming `issuer_cert` as the issuer (RFC 6960
    §4.1.1): the hash of the DER subject, and of the subjectPublicKey BIT STRING's contents.

    The key hash is taken from cryptography's own CertID: a request built for `issuer_cert` as
    its own issuer hashes the key bits exactly as the certificate carries them (the name hash of
    that CertID is of issuer_cert's issuer, hence computed here). ValueError if `algorithm` is not
    one of SUPPORTED_CERTID_HASHES. Cached: the responder calls it per response."""
    if algorithm.name not in SUPPORTED_CERTID_HASHES:
        raise ValueError(f"unsupported CertID hash {algorithm.name}")
    return _issuer_hashes(issuer_cert, algorithm.name)


@lru_cache(maxsize=256)
def _issuer_hashes(issuer_cert: x509.Certificate, hash_name: str) -> tuple[bytes, bytes]:
    algorithm = SUPPORTED_CERTID_HASHES[hash_name]()
    digest = hashes.Hash(algorithm)
    digest.update(issuer_cert.subject.public_bytes())
    probe = ocsp.OCSPRequestBuilder().add_certificate(issuer_cert, issuer_cert, algorithm).build()
    return digest.finalize(), probe.issuer_key_hash


def build_response(
    *,
    request: ParsedOCSPRequest,
    issuer_cert: x509.Certificate,
    responder_cert: x509.Certificate,
    responder_key: Signer,
    status: OCSPStatus,
    revoked_at: datetime | None,
    reason: str | None,
    this_update: datetime,
    next_update: datetime,
    cert_for_request: x509.Certificate | None = None,
) -> bytes:
    """DER of a successful, signed BasicOCSPResponse with one SingleResponse for the request.

    The CertID is echoed exactly (add_response_by_hash: the request's algorithm and hashes, even
    for an issuer we do not hold), the responder ID is by key hash, `certs` holds the responder
    certificate, the nonce is echoed (non-critical), the signature hash is hash_for_key's.
    `revoked_at` and `reason` (an API reason name; `unspecified` or None: no revocationReason)
    are used for `revoked` only, which requires `revoked_at`.

    ValueError, so that nothing misleading gets signed: `good`/`revoked` for a CertID that does
    not name `issuer_cert` (`unknown` may answer any CertID), a `cert_for_request` whose serial
    or issuer is not the request's, a responder key that is not responder_cert's, or a
    responder that is neither issuer_cert nor issued by it."""
    if status not in _CERT_STATUS:
        raise ValueError(f"unknown certificate status {status!r}")
    if status != "unknown":
        expected = issuer_hashes(issuer_cert, request.hash_algorithm)
        if (request.issuer_name_hash, request.issuer_key_hash) != expected:
            raise ValueError(f"the request's CertID does not name {issuer_cert.subject.rfc4514_string()}")
    if cert_for_request is not None and (
        cert_for_request.serial_number != request.serial or cert_for_request.issuer != issuer_cert.subject
    ):
        raise ValueError("cert_for_request is not the certificate the request asks about")
    if responder_key.public_key() != responder_cert.public_key():
        raise ValueError("responder_key is not the key of responder_cert")
    if responder_cert != issuer_cert and responder_cert.issuer != issuer_cert.subject:
        raise ValueError("the responder certificate is not issued by issuer_cert")
    revocation_time = revocation_reason = None
    if status == "revoked":
        if revoked_at is None:
            raise ValueError("a revoked status needs revoked_at")
        flag = to_reason_flag(reason or "unspecified")
        revocation_time, revocation_reason = revoked_at, None if flag is x509.ReasonFlags.unspecified else flag
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial,
            algorithm=request.hash_algorithm,
            cert_status=_CERT_STATUS[status],
            this_update=this_update,
            next_update=next_update,
            revocation_time=revocation_time,
            revocation_reason=revocation_reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
        .certificates([responder_cert])
    )
    if request.nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(request.nonce), critical=False)
    return responder_key.sign_ocsp_response(builder).public_bytes(serialization.Encoding.DER)


def build_error_response(status: ErrorStatus) -> bytes:
    """DER of an unsuccessful OCSPResponse (no responseBytes, unsigned, RFC 6960 §2.3)."""
    try:
        response_status = _ERROR_STATUS[status]
    except KeyError:
        raise ValueError(f"unknown OCSP error status {status!r}") from None
    return ocsp.OCSPResponseBuilder.build_unsuccessful(response_status).public_bytes(serialization.Encoding.DER)


def build_responder_certificate(
    *,
    issuer_cert: x509.Certificate,
    issuer_key: Signer,
    responder_public_key: CAPublicKey,
    subject_cn: str,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A delegated OCSP responder certificate (RFC 6960 §4.2.2.2), issued by `issuer_cert`.

    Subject: issuer_cert's O attribute(s) + CN=subject_cn. BasicConstraints CA:false and
    KeyUsage digitalSignature, both critical; ExtendedKeyUsage OCSPSigning and id-pkix-ocsp-nocheck
    (§4.2.2.2.1; so its validity should be short), SKI, AKI = issuer_cert's SKI. Signed with
    hash_for_key(issuer_key). ValueError for a key that is not issuer_cert's or an issuer_cert
    without SKI."""
    if issuer_key.public_key() != issuer_cert.public_key():
        raise ValueError("issuer_key is not the key of issuer_cert")
    try:
        issuer_ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ValueError("issuer_cert has no Subject Key Identifier") from None
    organization = issuer_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    subject = x509.Name([*organization, x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(responder_public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(responder_public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski), critical=False)
    )
    return issuer_key.sign_certificate(builder)


def response_says(
    der: bytes,
    *,
    request: ParsedOCSPRequest,
    status: OCSPStatus,
    revoked_at: datetime | None,
    this_update: datetime,
    next_update: datetime,
) -> bool:
    """Whether a stored response's own bytes answer `request` (same CertID: hash algorithm,
    issuer hashes, serial) with `status` (and, for `revoked`, `revoked_at` to the second) for
    exactly [this_update, next_update], a revoked answer dated no earlier than the revocation.
    The signature is not checked: the caller trusts the bytes' origin by other means (a MAC)."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return False
        single = resp.responses
        if len(list(single)) != 1:
            return False
        found = (
            resp.serial_number == request.serial
            and resp.hash_algorithm.name == request.hash_algorithm.name
            and resp.issuer_name_hash == request.issuer_name_hash
            and resp.issuer_key_hash == request.issuer_key_hash
            and resp.certificate_status == _CERT_STATUS[status]
            and resp.this_update_utc == this_update
            and resp.next_update_utc == next_update
        )
        if not found or status != "revoked":
            return found
        if revoked_at is None or resp.revocation_time_utc is None:
            return False
        return resp.revocation_time_utc == revoked_at.replace(microsecond=0) and this_update >= revoked_at.replace(microsecond=0)
    except (ValueError, UnsupportedAlgorithm):
        return False
