"""EST (RFC 7030) encodings: certs-only PKCS#7, CsrAttrs, and the lenient reading of request
bodies. Pure functions: no database, no Flask, no settings.

Bodies are base64 (`Content-Transfer-Encoding: base64`). What this module accepts in a
simpleenroll/simplereenroll body, so that every client we know of works (docs/est.md):
base64 of the DER PKCS#10 on one line (strongSwan's `pki --est` sends exactly this, with
`Content-Type: application/pkcs10` and no Content-Transfer-Encoding header) or wrapped in lines
(CRLF or LF, e.g. `openssl base64`); a PEM CSR; raw DER. What it answers: base64 of the DER on ONE
line, with no line breaks -- strongSwan's decoder (chunk_from_base64) does not skip line breaks.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from ca_service.pki.csr import MAX_CSR_PEM_BYTES

_WHITESPACE = re.compile(rb"\s+")
_PEM_BEGIN = b"-----BEGIN"

# OIDs of the key types this CA certifies (DESIGN §3), in CsrAttrs (RFC 7030 §4.5.2)
ID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SECP256R1 = "1.2.840.10045.3.1.7"
SECP384R1 = "1.3.132.0.34"
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"


class EstBodyRejected(Exception):
    """The body is not a CSR in any encoding we accept; `detail` says why (never the body)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _OidSet(core.SetOf):
    _child_spec = core.ObjectIdentifier


class _CsrAttribute(core.Sequence):
    _fields = [("type", core.ObjectIdentifier), ("values", _OidSet)]  # noqa: RUF012 - asn1crypto's spec


class _AttrOrOid(core.Choice):
    _alternatives = [("oid", core.ObjectIdentifier), ("attribute", _CsrAttribute)]  # noqa: RUF012 - asn1crypto's spec


class CsrAttrs(core.SequenceOf):
    _child_spec = _AttrOrOid


def csr_attributes() -> bytes:
    """DER CsrAttrs: EC P-256 (first: what we want), EC P-384, RSA, and ECDSA with SHA-256.
    Each curve is its own attribute, so the order survives DER's sorting of a SET OF."""

    def ec_curve(curve: str) -> _AttrOrOid:
        return _AttrOrOid(name="attribute", value=_CsrAttribute({"type": ID_EC_PUBLIC_KEY, "values": [curve]}))

    items = [
        ec_curve(SECP256R1),
        ec_curve(SECP384R1),
        _AttrOrOid(name="oid", value=core.ObjectIdentifier(RSA_ENCRYPTION)),
        _AttrOrOid(name="oid", value=core.ObjectIdentifier(ECDSA_WITH_SHA256)),
    ]
    der: bytes = CsrAttrs(items).dump()
    return der


def certs_only(certificates: list[x509.Certificate]) -> bytes:
    """A degenerate PKCS#7 SignedData holding the certificates, DER."""
    return pkcs7.serialize_certificates(certificates, Encoding.DER)


def base64_body(der: bytes) -> bytes:
    """The response body: base64 on one line (see the module docstring)."""
    return base64.b64encode(der)


def csr_pem_from_body(body: bytes) -> str:
    """The CSR of an EST request body as PEM, whatever of base64, PEM or DER it came in."""
    if body[:1] == b"\x30" and not body.isascii():  # raw DER (a SEQUENCE): taken as it is, never stripped
        return _pem_of(body)  # (its last byte can be 0x0a or 0x20: stripping it broke 1 CSR in ~40)
    data = body.strip()
    if not data:
        raise EstBodyRejected("the body is empty: send the PKCS#10 CSR, base64-encoded")
    if data.startswith(_PEM_BEGIN):
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise EstBodyRejected("the PEM body is not ASCII") from None
    compact = _WHITESPACE.sub(b"", data)
    compact += b"=" * (-len(compact) % 4)
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise EstBodyRejected("the body is not base64 (nor PEM or DER)") from None
    return _pem_of(der)


def _pem_of(der: bytes) -> str:
    if not der or der[0] != 0x30:
        raise EstBodyRejected("the body does not decode to a DER PKCS#10 request")
    if len(der) > MAX_CSR_PEM_BYTES:
        raise EstBodyRejected(f"the CSR is larger than {MAX_CSR_PEM_BYTES} bytes")
    b64 = base64.encodebytes(der).decode("ascii")
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + b64 + "-----END CERTIFICATE REQUEST-----\n"


def forwarded_certificate(header: str) -> x509.Certificate:
    """The client certificate nginx forwards as `$ssl_client_escaped_cert` (URL-escaped PEM)."""
    try:
        pem = unquote(header, errors="strict").encode("ascii")
        return x509.load_pem_x509_certificate(pem)
    except (ValueError, UnicodeError) as exc:
        raise EstBodyRejected(
            f"the forwarded client certificate is not a URL-escaped PEM certificate ({type(exc).__name__})"
        ) from None
