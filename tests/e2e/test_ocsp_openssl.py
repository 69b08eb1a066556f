"""The OCSP responder through a real gunicorn, checked with the `openssl ocsp` client: good, then
revoked at once after a revocation (the cache is invalidated), GET form, unknown serial, garbage,
SHA-1/SHA-256 CertIDs, and responses verifying across a responder rotation (clock moved)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.x509 import ocsp

from ca_service.services.authority import responder_certificates as ocsp_signer
from ca_service.services.authority.hierarchy import active_issuer
from ca_service.services.ocsp import cache as ocsp_cache
from tests.support.pki import make_csr, openssl

# Only the responder's own clock moves in the rotation test; openssl verifies at that time.
VALIDITY_SLACK = str(40 * 86400)


@pytest.fixture
def pems(live, tmp_path: Path) -> dict[str, object]:
    live.org("acme")
    live.user("alice", "acme")
    live.user("bob", "acme")
    r = live.issue("alice", make_csr()[1])
    assert r.status == 201, r
    chain = r.json["chain_pem"]
    (tmp_path / "leaf.pem").write_text(r.json["certificate_pem"])
    (tmp_path / "chain.pem").write_text(chain)
    (tmp_path / "issuing.pem").write_text(chain[: chain.index("-----END CERTIFICATE-----") + 26])
    return {"serial": r.json["serial"], "dir": tmp_path, "url": f"{live.base_url}/ocsp"}


def ocsp_cli(pems, *args: str) -> str:
    proc = openssl("ocsp", "-issuer", "issuing.pem", "-CAfile", "chain.pem", *args, cwd=pems["dir"])
    return proc.stdout + proc.stderr


def revoke(live, serial: str, reason: str = "key_compromise") -> None:
    r = live.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": reason})
    assert r.status == 200, r


def test_openssl_reports_good_then_revoked_at_once(live, ctx, pems):
    out = ocsp_cli(pems, "-cert", "leaf.pem", "-url", pems["url"], "-nonce")
    assert "Response verify OK" in out and "leaf.pem: good" in out, out
    for _ in range(2):  # without nonce: the second answer comes from the Redis cache
        out = ocsp_cli(pems, "-cert", "leaf.pem", "-url", pems["url"], "-no_nonce")
        assert "Response verify OK" in out and "leaf.pem: good" in out, out
    key = ocsp_cache.cache_key(ctx, active_issuer(ctx).id, pems["serial"], "sha1")
    assert ctx.redis().exists(key)
    revoke(live, pems["serial"])  # the API drops the cache entries right after commit
    assert not ctx.redis().exists(key)
    for flag in ("-no_nonce", "-nonce"):
        out = ocsp_cli(pems, "-cert", "leaf.pem", "-url", pems["url"], flag)
        assert "Response verify OK" in out and "leaf.pem: revoked" in out, out
        assert "Reason: keyCompromise" in out, out


@pytest.mark.parametrize("digest", ["-sha1", "-sha256"])
def test_get_form_with_openssl_reqout(live, pems, digest):
    ocsp_cli(pems, digest, "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der")  # digest before -cert
    der = (pems["dir"] / "req.der").read_bytes()
    assert ocsp.load_der_ocsp_request(der).hash_algorithm.name == digest[1:]
    for encoded in (quote(base64.b64encode(der).decode(), safe=""), base64.urlsafe_b64encode(der).decode()):
        r = requests.get(f"{pems['url']}/{encoded}", timeout=10)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/ocsp-response"
        assert "max-age=" in r.headers["Cache-Control"] and r.headers["ETag"]
        (pems["dir"] / "resp.der").write_bytes(r.content)
        out = ocsp_cli(pems, digest, "-cert", "leaf.pem", "-respin", "resp.der")
        assert "Response verify OK" in out and "leaf.pem: good" in out, out


def test_unknown_serial_and_garbage(live, pems):
    out = ocsp_cli(pems, "-serial", "0x7e57ab1e", "-url", pems["url"], "-nonce")
    assert "Response verify OK" in out and "0x7e57ab1e: unknown" in out, out
    for body in (b"garbage", b"", b"\x30\x82\xff\xff"):
        r = requests.post(pems["url"], data=body, headers={"Content-Type": "application/ocsp-request"}, timeout=10)
        assert r.status_code == 200
        assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    r = requests.get(pems["url"] + "/MEI%2F%2F%2Fnot-base64!", timeout=10)
    assert r.status_code == 200
    assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def _responder_serial(pems, url: str) -> int:
    ocsp_cli(pems, "-cert", "leaf.pem", "-nonce", "-reqout", "rot.der")
    r = requests.post(url, data=(pems["dir"] / "rot.der").read_bytes(), timeout=10)
    return int(ocsp.load_der_ocsp_response(r.content).certificates[0].serial_number)


def test_rotation_with_the_clock_moved_verifies_across(live_processes, ctx, pems, clock):
    # A gunicorn of its own: the shared one's workers may still hold a responder whose row the
    # per-test database cleanup deleted (something production never does).
    old = int(ocsp_signer.ensure_responder(ctx).serial, 16)
    url = live_processes.start_api(workers=2, name="api-ocsp-rotation") + "/ocsp"
    try:
        assert _responder_serial(pems, url) == old
        clock.travel(days=25)  # 5 of the responder's 30 days left: rotation due, not expired
        at = str(int((datetime.now(UTC) + timedelta(days=25)).timestamp()))
        verify = ("-attime", at, "-validity_period", VALIDITY_SLACK)
        out = ocsp_cli(pems, "-cert", "leaf.pem", "-url", url, "-nonce", *verify)
        assert "Response verify OK" in out and "leaf.pem: good" in out, out
        result = ocsp_signer.ensure_responder(ctx)  # what the scheduler's rotation job does
        assert result.created
        new = int(result.serial, 16)
        deadline = time.monotonic() + 15
        seen: set[int] = set()
        while time.monotonic() < deadline:  # every gunicorn worker moves to the new responder
            seen = {_responder_serial(pems, url) for _ in range(6)}
            if seen == {new}:
                break
            time.sleep(0.3)
        assert seen == {new} and old != new
        out = ocsp_cli(pems, "-cert", "leaf.pem", "-url", url, "-nonce", *verify)
        assert "Response verify OK" in out and "leaf.pem: good" in out, out
        cert = x509.load_der_x509_certificate(_der_of_responder(ctx, result.serial))
        assert cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=50)
    finally:
        live_processes.processes["api-ocsp-rotation"].stop()


def _der_of_responder(ctx, serial: str) -> bytes:
    from sqlalchemy import select

    from ca_service.store.models import CertificateAuthority

    with ctx.sessions() as s:
        return s.scalars(select(CertificateAuthority.der).where(CertificateAuthority.serial == serial)).one()
