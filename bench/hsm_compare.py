"""Signing throughput of the two key backends in the same run: client certificates issued per
second and OCSP responses freshly signed per second, with an issuing key in an encrypted file
(`file`) and in a SoftHSM2 token (`pkcs11`). Only the signing path (profile build + signature,
OCSP response build + signature) in one process: no HTTP, no database. SoftHSM takes a file lock
per signature; a network HSM adds its round trip to every signature, so measure the real device.

    .venv/bin/python -m bench.hsm_compare [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from bench.common import print_table
from ca_service.pki.hierarchy import build_root, ca_name
from ca_service.pki.keys import EncryptedFileKeyBackend
from ca_service.pki.keys_pkcs11 import Pkcs11KeyBackend
from ca_service.pki.profile import ClientCertRequest, build_client_certificate, make_issuer_context
from ca_service.pki.signer import KeySigner
from ca_service.pki.signing import CAPrivateKey

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"
PASSPHRASE = b"bench-passphrase-not-secret"


def _softhsm(directory: Path) -> Pkcs11KeyBackend:
    (directory / "tokens").mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {directory / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench", "--so-pin", secrets.token_hex(8), "--pin", pin],
        check=True,
        capture_output=True,
    )
    (directory / "pin").write_text(pin)
    return Pkcs11KeyBackend(SOFTHSM, "bench", directory / "pin")


def _rate(seconds: float, operation: Callable[[], object]) -> float:
    operation()  # warm-up: the first call logs in / decrypts
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        count += 1
    return count / (time.perf_counter() - start)


def _measure(key: CAPrivateKey, seconds: float) -> tuple[float, float]:
    now = datetime.now(UTC).replace(microsecond=0)
    signer = KeySigner("issuing-1", key)
    ca = build_root(
        key=signer, subject=ca_name("Bench Bank", "Bench CA"), serial=1, not_before=now, not_after=now + timedelta(days=9)
    )
    issuer = make_issuer_context(ca, signer, crl_url="http://x/c.crl", ocsp_url="http://x/ocsp", ca_cert_url="http://x/ca.crt")
    client = ec.generate_private_key(ec.SECP256R1()).public_key()

    def issue() -> x509.Certificate:
        req = ClientCertRequest(
            "alice", "acme", "Bench Bank", client, x509.random_serial_number(), now, now + timedelta(days=365)
        )
        return build_client_certificate(req, issuer)

    leaf = issue()

    def respond() -> ocsp.OCSPResponse:
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=leaf, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,  # noqa: S303 - CertID
            this_update=now, next_update=now + timedelta(hours=1), revocation_time=None, revocation_reason=None,
        )  # fmt: skip
        return signer.sign_ocsp_response(builder.responder_id(ocsp.OCSPResponderEncoding.HASH, ca))

    return _rate(seconds, issue), _rate(seconds, respond)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hsm-"))
    try:
        rows = []
        files = EncryptedFileKeyBackend(work / "keys", b"bench-passphrase-not-secret")
        files.generate("issuing-1", "ec-p256")
        rows.append(
            [
                "file (PKCS#8, EC P-256)",
                *_measure(EncryptedFileKeyBackend(work / "keys", b"bench-passphrase-not-secret").load("issuing-1"), args.seconds),
            ]
        )
        if shutil.which("softhsm2-util") and os.path.exists(SOFTHSM):
            hsm = _softhsm(work / "softhsm")
            rows.append(["pkcs11 (SoftHSM2, EC P-256)", *_measure(hsm.generate("issuing-1", "ec-p256"), args.seconds)])
        print_table(
            "Signing throughput by key backend (one process, no HTTP or database)",
            ["backend", "certificates issued/s", "OCSP responses signed/s"],
            rows,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
