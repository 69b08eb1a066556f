"""Large CRLs in linear time.

cryptography's CRL builder needs a Rust `RevokedCertificate` object per entry (costly to create,
plus a second serialisation pass): slow and memory-hungry for a million entries. This
module lets cryptography build and sign everything it builds well — the TBSCertList with the
issuer, dates and extensions (CRL Number, AKI) — for an empty CRL, and encodes only the
`revokedCertificates` list itself, whose DER is fixed by RFC 5280 §5.1.2.6 (serial, revocation
date, optional reasonCode). It then signs the spliced TBSCertList with the CA key through
the issuer's Signer and checks the result by loading it with cryptography and verifying the signature
over the spliced TBSCertList.
tests/unit/test_pki_crl_fast.py proves the spliced TBSCertList byte-identical to the builder's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ca_service.pki.reasons import REASONS, to_reason_flag
from ca_service.pki.signer import Signer

# crlEntryExtensions: SEQUENCE { SEQUENCE { OID 2.5.29.21, OCTET STRING { ENUMERATED reasonCode } } }
# per API reason (RFC 5280 §5.3.1); `unspecified` is omitted from the entry. The ENUMERATED is
# cryptography's own encoding of the reason.
_REASON_EXT = {
    name: b""
    if name == "unspecified"
    else bytes([0x30, 0x0C, 0x30, 0x0A, 0x06, 0x03, 0x55, 0x1D, 0x15, 0x04, 0x03])
    + x509.CRLReason(to_reason_flag(name)).public_bytes()
    for name in REASONS
}


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _length(len(body)) + body


def _read_header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, length of contents) of the DER element at `pos`."""
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, pos, first
    n = first & 0x7F
    return tag, pos + n, int.from_bytes(data[pos : pos + n], "big")


_LEN = [bytes((n,)) for n in range(128)]


def utc_timestamp_text(at: datetime) -> str:
    """'YYYYMMDDHHMMSS' in UTC: the form encode_entries takes (the database can produce it too)."""
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def encode_entries(entries: Iterable[tuple[str, str, str]]) -> bytes:
    """The DER `revokedCertificates` SEQUENCE for (serial as hex, revocation time as UTC
    'YYYYMMDDHHMMSS', reason name) rows.

    Each entry: SEQUENCE { INTEGER serial, Time (UTCTime through 2049, GeneralizedTime from 2050,
    RFC 5280 §4.1.2.5), [reasonCode extension unless unspecified] }.
    """
    out = bytearray()  # one growing buffer: no million small bytes objects held for a join
    reason_ext = _REASON_EXT
    lengths = _LEN
    for serial_hex, stamp, reason in entries:
        serial_hex = serial_hex.lstrip("0")  # DER INTEGERs are minimal
        if len(serial_hex) % 2:
            serial_hex = "0" + serial_hex
        serial = bytes.fromhex(serial_hex)
        if not serial or len(serial) > 21 or not any(serial):
            raise ValueError(f"invalid serial {serial_hex!r}")
        if serial[0] & 0x80:
            serial = b"\x00" + serial  # keep the INTEGER positive
        if len(stamp) != 14:
            raise ValueError(f"invalid time {stamp!r}")
        if stamp < "2050":
            when = b"\x17\x0d" + stamp[2:].encode() + b"Z"
        else:
            when = b"\x18\x0f" + stamp.encode() + b"Z"
        body = b"\x02" + lengths[len(serial)] + serial + when + reason_ext[reason]
        out += b"\x30" + lengths[len(body)] + body
    return _tlv(0x30, bytes(out)) if out else b""


def splice_crl(template: x509.CertificateRevocationList, revoked: bytes, issuer_key: Signer) -> bytes:
    """Insert `revoked` into the TBSCertList of an empty `template` CRL, sign it, return DER."""
    tbs = template.tbs_certlist_bytes
    _tag, start, length = _read_header(tbs, 0)
    pos = start
    # version, signature, issuer, thisUpdate, nextUpdate: the list goes right after them,
    # before the [0] crlExtensions.
    for _ in range(5):
        _t, content, size = _read_header(tbs, pos)
        pos = content + size
    new_tbs = _tlv(0x30, tbs[start:pos] + revoked + tbs[pos : start + length])
    signature = issuer_key.sign_bytes(new_tbs)
    whole = template.public_bytes(serialization.Encoding.DER)
    _t, outer, _n = _read_header(whole, 0)
    _t, tbs_content, tbs_size = _read_header(whole, outer)
    _t, alg_content, alg_size = _read_header(whole, tbs_content + tbs_size)
    signature_algorithm = whole[tbs_content + tbs_size : alg_content + alg_size]
    der = _tlv(0x30, new_tbs + signature_algorithm + _tlv(0x03, b"\x00" + signature))
    # The check before anyone sees it: cryptography parses the whole CRL, every entry included, and
    # the signature verifies over exactly the TBS bytes a relying party hashes.
    # (CertificateRevocationList.is_signature_valid would re-encode the parsed TBS first: much
    # slower for a large CRL, for the same answer.)
    try:
        x509.load_der_x509_crl(der)
        issuer_key.verify_bytes(signature, new_tbs)
    except (ValueError, InvalidSignature) as exc:
        raise ValueError(f"spliced CRL does not verify: {str(exc) or type(exc).__name__}") from None
    return der
