"""The linear-time CRL encoder produces exactly the TBSCertList cryptography's builder produces."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ca_service.pki.crl import RevokedEntry, as_text_entries, build_crl, build_large_crl
from ca_service.pki.crl_fast import splice_crl
from ca_service.pki.hierarchy import build_root, ca_name
from ca_service.pki.reasons import REASONS
from ca_service.pki.signer import KeySigner
from tests.support.pki import openssl


def _entries(n: int) -> list[RevokedEntry]:
    base = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    serials = [1, 127, 128, 255, 256, 2**159 - 1, 2**63] + [
        int.from_bytes(secrets.token_bytes(20), "big") >> 1 | 1 for _ in range(n)
    ]
    dates = [base, datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2050, 1, 1, tzinfo=UTC)]
    return [RevokedEntry(s, dates[i % 3] + timedelta(seconds=i), REASONS[i % len(REASONS)]) for i, s in enumerate(serials)]


@pytest.mark.parametrize("count", [0, 1, 307])
def test_spliced_tbs_is_byte_identical_to_the_builder(hierarchy, count):
    h = hierarchy
    entries = _entries(300)[:count]  # edge-case serials and dates first, then random ones
    now = datetime.now(UTC).replace(microsecond=0)
    args = dict(
        issuer_cert=h.issuing, issuer_key=h.issuing_key, crl_number=42, this_update=now, next_update=now + timedelta(hours=24)
    )
    reference = x509.load_der_x509_crl(build_crl(entries=entries, **args))
    fast_der = build_large_crl(entries=as_text_entries(entries), **args)
    fast = x509.load_der_x509_crl(fast_der)
    assert fast.tbs_certlist_bytes == reference.tbs_certlist_bytes
    assert fast.is_signature_valid(h.issuing.public_key())
    (h.dir / "fast.crl").write_bytes(fast_der)
    out = openssl("crl", "-inform", "DER", "-in", "fast.crl", "-CAfile", "chain.pem", "-noout", cwd=h.dir)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr


def test_rsa_issuer(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC).replace(microsecond=0)
    ca = build_root(
        key=KeySigner("rsa", key), subject=ca_name("B", "RSA CA"), serial=5, not_before=now, not_after=now + timedelta(days=30)
    )
    der = build_large_crl(
        issuer_cert=ca,
        issuer_key=KeySigner("rsa", key),
        entries=[("7", "20261125000000", "superseded")],
        crl_number=1,
        this_update=now,
        next_update=now + timedelta(days=1),
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(key.public_key()) and crl.get_revoked_certificate_by_serial_number(7) is not None


def test_a_splice_that_does_not_parse_is_refused(hierarchy):
    h = hierarchy
    now = datetime.now(UTC).replace(microsecond=0)
    dates = {"this_update": now, "next_update": now + timedelta(days=1)}
    empty = build_crl(issuer_cert=h.issuing, issuer_key=h.issuing_key, entries=(), crl_number=1, **dates)
    broken_list = b"\x30\x03\x02\x01"  # a SEQUENCE that claims 3 content bytes but holds a truncated INTEGER
    with pytest.raises(ValueError, match="spliced CRL does not verify"):
        splice_crl(x509.load_der_x509_crl(empty), broken_list, h.issuing_key)
