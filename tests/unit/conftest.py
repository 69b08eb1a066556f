"""A throwaway CA hierarchy built with the pure pki functions (no database, no settings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca_service.pki.hierarchy import CAUrls, build_issuing, build_root, ca_name
from ca_service.pki.profile import ClientCertRequest, build_client_certificate, make_issuer_context
from ca_service.pki.signer import KeySigner


@dataclass
class Hierarchy:
    dir: Path
    root: x509.Certificate
    root_key: KeySigner  # the CA keys, as signers (callers never hold a private key)
    issuing: x509.Certificate
    issuing_key: KeySigner

    def leaf(self, login_id: str = "alice", *, days: int = 365) -> x509.Certificate:
        now = datetime.now(UTC).replace(microsecond=0)
        ctx = make_issuer_context(
            self.issuing, self.issuing_key, crl_url="http://x/c.crl", ocsp_url="http://x/ocsp", ca_cert_url="http://x/i.crt"
        )
        key = ec.generate_private_key(ec.SECP256R1())
        req = ClientCertRequest(
            login_id,
            "acme",
            "Test Bank",
            key.public_key(),
            x509.random_serial_number(),
            now - timedelta(minutes=5),
            now + timedelta(days=days),
        )
        return build_client_certificate(req, ctx)

    def write(self, name: str, cert: x509.Certificate) -> Path:
        path = self.dir / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path


@pytest.fixture
def hierarchy(tmp_path: Path) -> Hierarchy:
    now = datetime.now(UTC).replace(microsecond=0)
    root_key = KeySigner("root", ec.generate_private_key(ec.SECP384R1()))
    root = build_root(
        key=root_key,
        subject=ca_name("Test Bank", "Test Root"),
        serial=1,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=3650),
    )
    issuing_key = KeySigner("issuing", ec.generate_private_key(ec.SECP256R1()))
    issuing = build_issuing(
        key=issuing_key, subject=ca_name("Test Bank", "Test Issuing"), root_cert=root, root_key=root_key, serial=2,
        not_before=now - timedelta(days=1), not_after=now + timedelta(days=1825), urls=CAUrls("http://x/root.crl", "http://x/root.crt"),
    )  # fmt: skip
    h = Hierarchy(tmp_path, root, root_key, issuing, issuing_key)
    h.write("root.pem", root)
    h.write("issuing.pem", issuing)
    (tmp_path / "chain.pem").write_bytes((tmp_path / "issuing.pem").read_bytes() + (tmp_path / "root.pem").read_bytes())
    return h
