"""CRL building, revocation reasons and signature hashes, checked with cryptography and the openssl CLI.

`hierarchy` (tests/unit/conftest.py): an EC P-256 issuing CA under an EC P-384 root, both with
SKI (AKI on the issuing CA), BasicConstraints and KeyUsage keyCertSign+cRLSign; PEM files in tmp_path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca_service.pki.crl import RevokedEntry, build_crl, crl_info
from ca_service.pki.reasons import REASONS, from_reason_flag, to_reason_flag
from ca_service.pki.signing import hash_for_key
from tests.support.pki import openssl

OPENSSL_REASON_TEXT = {
    "key_compromise": "Key Compromise",
    "affiliation_changed": "Affiliation Changed",
    "superseded": "Superseded",
    "cessation_of_operation": "Cessation Of Operation",
    "privilege_withdrawn": "Privilege Withdrawn",
}


def _crl(h, entries, *, number=7, this_update=None, issuer=None, key=None):
    now = this_update or datetime.now(UTC).replace(microsecond=0)
    der = build_crl(
        issuer_cert=issuer or h.issuing,
        issuer_key=key or h.issuing_key,
        entries=entries,
        crl_number=number,
        this_update=now,
        next_update=now + timedelta(hours=24),
    )
    (h.dir / "issuing.crl").write_bytes(der)
    return der, now


def _openssl_entries(text: str) -> dict[int, str]:
    """Serial -> that entry's block of `openssl crl -text`."""
    blocks = re.split(r"\n\s*Serial Number: ", text.split("Revoked Certificates:", 1)[1])[1:]
    return {int(block.split("\n", 1)[0].strip(), 16): block for block in blocks}


def test_reasons_round_trip():
    assert REASONS == (
        "unspecified",
        "key_compromise",
        "affiliation_changed",
        "superseded",
        "cessation_of_operation",
        "privilege_withdrawn",
    )
    for name in REASONS:
        assert from_reason_flag(to_reason_flag(name)) == name
    assert to_reason_flag("key_compromise") is x509.ReasonFlags.key_compromise
    assert from_reason_flag(None) == "unspecified"  # no reasonCode
    with pytest.raises(ValueError, match="unknown revocation reason"):
        to_reason_flag("keyCompromise")
    with pytest.raises(ValueError, match="no API name"):
        from_reason_flag(x509.ReasonFlags.ca_compromise)


def test_hash_for_key():
    assert hash_for_key(ec.generate_private_key(ec.SECP256R1())).name == "sha256"
    assert hash_for_key(ec.generate_private_key(ec.SECP384R1())).name == "sha384"
    assert hash_for_key(rsa.generate_private_key(public_exponent=65537, key_size=2048)).name == "sha256"
    with pytest.raises(ValueError, match="curve"):
        hash_for_key(ec.generate_private_key(ec.SECP521R1()))


def test_crl_fields_reasons_and_openssl_signature(hierarchy):
    h = hierarchy
    revoked_at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    entries = [RevokedEntry(0x1000 + i, revoked_at + timedelta(minutes=i), name) for i, name in enumerate(REASONS)]
    der, now = _crl(h, entries)
    crl = x509.load_der_x509_crl(der)
    assert crl.issuer == h.issuing.subject
    assert crl.last_update_utc == now and crl.next_update_utc == now + timedelta(hours=24)
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == h.issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki.authority_cert_issuer is None and aki.authority_cert_serial_number is None
    assert crl.signature_hash_algorithm is not None and crl.signature_hash_algorithm.name == "sha256"
    assert crl.is_signature_valid(h.issuing.public_key()) and len(crl) == len(REASONS)
    for i, name in enumerate(REASONS):
        entry = crl.get_revoked_certificate_by_serial_number(0x1000 + i)
        assert entry is not None and entry.revocation_date_utc == revoked_at + timedelta(minutes=i)
        if name == "unspecified":
            assert len(entry.extensions) == 0  # RFC 5280 §5.3.1: reasonCode omitted
        else:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason)
            assert not reason.critical and from_reason_flag(reason.value.reason) == name

    out = openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-CAfile", "chain.pem", "-noout", "-text", cwd=h.dir)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "Version 2 (0x1)" in out.stdout and "X509v3 CRL Number" in out.stdout and "Authority Key Identifier" in out.stdout
    blocks = _openssl_entries(out.stdout)
    assert set(blocks) == {0x1000 + i for i in range(len(REASONS))}
    for i, name in enumerate(REASONS):
        if name == "unspecified":
            assert "Reason Code" not in blocks[0x1000 + i] and "Unspecified" not in blocks[0x1000 + i]
        else:
            assert "X509v3 CRL Reason Code" in blocks[0x1000 + i] and OPENSSL_REASON_TEXT[name] in blocks[0x1000 + i]
    info = crl_info(der)
    assert (info.crl_number, info.this_update, info.next_update, info.entries) == (7, now, now + timedelta(hours=24), 6)


def test_openssl_verify_rejects_revoked_and_accepts_valid(hierarchy):
    h = hierarchy
    good, bad = h.leaf("good"), h.leaf("bad")
    h.write("good.pem", good)
    h.write("bad.pem", bad)
    _crl(h, [RevokedEntry(bad.serial_number, datetime.now(UTC).replace(microsecond=0), "affiliation_changed")])
    openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-out", "issuing.crl.pem", cwd=h.dir, check=True)
    ok = openssl("verify", "-crl_check", "-CRLfile", "issuing.crl.pem", "-CAfile", "chain.pem", "good.pem", cwd=h.dir)
    assert ok.returncode == 0 and "good.pem: OK" in ok.stdout, ok.stdout + ok.stderr
    revoked = openssl("verify", "-crl_check", "-CRLfile", "issuing.crl.pem", "-CAfile", "chain.pem", "bad.pem", cwd=h.dir)
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    text = openssl("crl", "-in", "issuing.crl.pem", "-noout", "-text", cwd=h.dir).stdout
    assert "Affiliation Changed" in _openssl_entries(text)[bad.serial_number]


def test_empty_crl_and_root_crl_signed_with_sha384(hierarchy):
    h = hierarchy
    der, _ = _crl(h, [], number=1)
    assert crl_info(der).entries == 0 and crl_info(der).crl_number == 1
    out = openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-CAfile", "chain.pem", "-noout", cwd=h.dir)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr
    der, _ = _crl(
        h, (RevokedEntry(2, datetime(2026, 1, 1, tzinfo=UTC), "superseded") for _ in range(1)), issuer=h.root, key=h.root_key
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.signature_hash_algorithm is not None and crl.signature_hash_algorithm.name == "sha384"
    out = openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-CAfile", "root.pem", "-noout", cwd=h.dir)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr


def test_dates_with_offsets_and_naive_utc(hierarchy):
    h = hierarchy
    plus_two = timezone(timedelta(hours=2))
    this_update = datetime(2026, 11, 25, 14, 0, tzinfo=plus_two)
    entries = [
        RevokedEntry(5, datetime(2026, 11, 2, 10, 0, tzinfo=plus_two), "superseded"),
        RevokedEntry(6, datetime(2026, 11, 2, 10, 0), "superseded"),  # naive: UTC, as in cryptography
        RevokedEntry(7, datetime(2050, 1, 1, tzinfo=UTC), "superseded"),  # GeneralizedTime from 2050
    ]
    crl = x509.load_der_x509_crl(_crl(h, entries, this_update=this_update)[0])
    assert crl.last_update_utc == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert crl.get_revoked_certificate_by_serial_number(5).revocation_date_utc == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    assert crl.get_revoked_certificate_by_serial_number(6).revocation_date_utc == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert crl.get_revoked_certificate_by_serial_number(7).revocation_date_utc == datetime(2050, 1, 1, tzinfo=UTC)


def test_many_entries(hierarchy):
    h = hierarchy
    at = datetime(2026, 11, 1, tzinfo=UTC)
    count = 20_000
    der, _ = _crl(h, (RevokedEntry(2**150 + i, at + timedelta(seconds=i), REASONS[i % 6]) for i in range(count)))
    assert crl_info(der).entries == count
    crl = x509.load_der_x509_crl(der)
    entry = crl.get_revoked_certificate_by_serial_number(2**150 + 13)
    assert entry is not None and entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name == REASONS[13 % 6]
    out = openssl("crl", "-inform", "DER", "-in", "issuing.crl", "-CAfile", "chain.pem", "-noout", cwd=h.dir)
    assert out.returncode == 0 and "verify OK" in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"entries": [RevokedEntry(1, datetime(2026, 1, 1, tzinfo=UTC), "keyCompromise")]}, "unknown revocation reason"),
        ({"entries": [RevokedEntry(0, datetime(2026, 1, 1, tzinfo=UTC), "superseded")]}, "serial"),
        ({"entries": [RevokedEntry(2**159, datetime(2026, 1, 1, tzinfo=UTC), "superseded")]}, "serial"),
        ({"crl_number": -1}, "CRL number"),
        ({"crl_number": 2**159}, "CRL number"),
        ({"next_update": datetime(2020, 1, 1, tzinfo=UTC)}, "update"),
        ({"issuer_key": "root"}, "not the key"),
    ],
)
def test_bad_input_is_rejected(hierarchy, change, message):
    h = hierarchy
    now = datetime.now(UTC)
    args = {
        "issuer_cert": h.issuing,
        "issuer_key": h.issuing_key,
        "entries": [],
        "crl_number": 1,
        "this_update": now,
        "next_update": now + timedelta(days=1),
    }
    args.update(change)
    if args["issuer_key"] == "root":
        args["issuer_key"] = h.root_key
    with pytest.raises(ValueError, match=message):
        build_crl(**args)
