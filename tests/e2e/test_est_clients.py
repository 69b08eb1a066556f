"""EST (DESIGN §4c) with clients nobody here wrote, through the shipped nginx config
(deploy/nginx, client certificates verified against the CA chain and the CRLs by
deploy/nginx/est-trust-refresh.sh's files) in front of a real gunicorn:

- strongSwan's `pki --estca` (cacerts), `pki --est --userpass` (simpleenroll with a one-time
  code) and `pki --est --cert --key` (simplereenroll over TLS client authentication, in the
  renewal window: the clock of every process moved);
- curl + `openssl pkcs7 -print_certs` for cacerts and simpleenroll.

strongSwan's pki has its own TLS and HTTP code (src/pki/est/est_tls.c): it sends the CSR as
one-line base64 without Content-Transfer-Encoding and decodes answers without skipping line
breaks. ~15 s on a loaded 2-core machine."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from ca_service.services.crl import publication as crl_publication
from tests.conftest import SYSTEM
from tests.support.nginx import Nginx
from tests.support.pki import openssl
from tests.test_est import clear_auth_throttle

pytestmark = pytest.mark.xdist_group("nginx-est")


@dataclass
class Edge:
    nginx: Nginx
    url: str  # what a client is given: the bank's base URL; the clients append /.well-known/est/
    tls_ca: Path  # the proxy's TLS certificate (self-signed here)


@pytest.fixture(scope="module")
def edge(live_processes, ctx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    base = live_processes.start_api(workers=2, name="api-est-edge", CA_TRUSTED_PROXIES="127.0.0.1")
    crl_publication.publish(ctx, force=True, actor=SYSTEM)  # nginx checks the issuing CA's CRL too
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), [base.removeprefix("http://")])
    try:
        yield Edge(nginx, f"https://localhost:{nginx.https_port}", nginx.cert)
    finally:
        nginx.stop()
        live_processes.processes["api-est-edge"].stop()


@pytest.fixture(autouse=True)
def fresh_throttle(ctx) -> Iterator[None]:
    """The refused attempts below count against 127.0.0.1 like any bad credentials: forget them."""
    clear_auth_throttle(ctx)
    yield
    clear_auth_throttle(ctx)


def pki(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["pki", *args], cwd=cwd, input=stdin, capture_output=True, timeout=60)
    assert done.returncode == 0, f"pki {' '.join(args)}: {done.stderr.decode(errors='replace')[-2000:]}"
    return done


def curl(*args: str, cwd: Path) -> bytes:
    done = subprocess.run(["curl", "-sS", "--fail-with-body", *args], cwd=cwd, capture_output=True, timeout=60)
    assert done.returncode == 0, f"curl {' '.join(args)}: {done.stderr.decode()} {done.stdout[:500]!r}"
    return done.stdout


def mint(api, login_id: str) -> str:
    r = api.post(f"/v1/users/{login_id}/enrolment-codes", json={})
    assert r.status == 201, r
    return r.json["code"]


def strongswan_csr(directory: Path, name: str) -> Path:
    """A P-256 key and a DER CSR made by strongSwan itself (its subject is ignored by the CA)."""
    key = directory / f"{name}.key"
    key.write_bytes(pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem", cwd=directory).stdout)
    req = directory / f"{name}.req.der"
    req.write_bytes(pki("--req", "--in", key.name, "--type", "ecdsa", "--dn", "CN=ignored, O=Evil Corp", "--outform", "der",
                        cwd=directory).stdout)  # fmt: skip
    return req


def chain_pem(ctx_dir: Path, edge: Edge) -> Path:
    """cacerts with curl: base64 of a certs-only PKCS#7 -> PEM certificates, as openssl prints them."""
    body = curl("--cacert", str(edge.tls_ca), edge.url + "/.well-known/est/cacerts", cwd=ctx_dir)
    der = ctx_dir / "cacerts.p7.der"
    der.write_bytes(base64.b64decode(body))
    printed = openssl("pkcs7", "-inform", "DER", "-in", str(der), "-print_certs", check=True).stdout
    chain = ctx_dir / "chain.pem"
    chain.write_text(printed)
    return chain


def test_strongswan_and_curl_read_the_ca_certificates(edge, issuer, tmp_path):
    chain = chain_pem(tmp_path, edge)
    certs = x509.load_pem_x509_certificates(chain.read_bytes())
    assert issuer in certs and any(c.subject == c.issuer for c in certs)  # the issuing CA and the root
    # strongSwan: --cacert is the trust anchor of its own TLS stack (the proxy's certificate here)
    pki("--estca", "--url", edge.url, "--cacert", str(edge.tls_ca), "--caout", "ca", "--outform", "pem", cwd=tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ca") and p.suffix in (".pem", ".crt"))
    got = [x509.load_pem_x509_certificate((tmp_path / name).read_bytes()) for name in written]
    assert {c.fingerprint(c.signature_hash_algorithm) for c in got} == {  # type: ignore[arg-type]
        c.fingerprint(c.signature_hash_algorithm)
        for c in certs  # type: ignore[arg-type]
    }, written


def test_strongswan_enrols_with_a_code_and_re_enrols_with_its_certificate(api, ctx, edge, clock, tmp_path):
    api.org("acme")
    api.user("alice", "acme")
    chain = chain_pem(tmp_path, edge)
    # simpleenroll: HTTP Basic login_id:code, the code as the help desk reads it out (lower case)
    req = strongswan_csr(tmp_path, "alice")
    code = mint(api, "alice").lower()
    cert = tmp_path / "alice.crt"
    cert.write_bytes(pki("--est", "--url", edge.url, "--in", req.name, "--cacert", str(edge.tls_ca),
                         "--userpass", f"alice:{code}", "--outform", "pem", cwd=tmp_path).stdout)  # fmt: skip
    first = x509.load_pem_x509_certificate(cert.read_bytes())
    assert first.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "alice"  # built by the CA
    openssl("verify", "-CAfile", str(chain), str(cert), check=True)
    # the code is used up: the same again is refused (401), nothing issued
    again = subprocess.run(["pki", "--est", "--url", edge.url, "--in", req.name, "--cacert", str(edge.tls_ca),
                            "--userpass", f"alice:{code}"], cwd=tmp_path, capture_output=True, timeout=60)  # fmt: skip
    assert again.returncode != 0 and b"HTTP 401" in again.stderr, again.stderr[-500:]

    # simplereenroll: 30 days before expiry (inside the 40-day window) for the service; nginx
    # verifies the certificate at the real time, when it is valid and not on the CRL it holds
    clock.travel(days=365 - 30)
    req2 = strongswan_csr(tmp_path, "alice2")
    renewed = tmp_path / "alice-renewed.crt"
    renewed.write_bytes(pki("--est", "--url", edge.url, "--in", req2.name, "--cacert", str(edge.tls_ca),
                            "--cert", cert.name, "--key", "alice.key", "--outform", "pem", cwd=tmp_path).stdout)  # fmt: skip
    second = x509.load_pem_x509_certificate(renewed.read_bytes())
    assert second.serial_number != first.serial_number
    assert second.subject == first.subject and second.public_key() != first.public_key()
    openssl("verify", "-attime", str(int(clock.now().timestamp())), "-CAfile", str(chain), str(renewed), check=True)
    old = api.get(f"/v1/certificates/{first.serial_number:x}", role="operator")
    assert old.json["status"] == "revoked" and old.json["revocation_reason"] == "superseded", old
    # the superseded certificate again: nginx still holds a CRL without it and forwards it; the
    # service refuses it (only the login ID's current certificate re-enrols)
    req3 = strongswan_csr(tmp_path, "alice3")
    stale = subprocess.run(["pki", "--est", "--url", edge.url, "--in", req3.name, "--cacert", str(edge.tls_ca),
                            "--cert", cert.name, "--key", "alice.key"],
                           cwd=tmp_path, capture_output=True, timeout=60)  # fmt: skip
    assert stale.returncode != 0 and b"HTTP 401" in stale.stderr, stale.stderr[-500:]


def test_curl_enrols_with_a_code(api, edge, tmp_path):
    api.org("acme")
    api.user("bob", "acme")
    chain = chain_pem(tmp_path, edge)
    code = mint(api, "bob")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "bob.key",
            "-subj", "/CN=alice", "-outform", "DER", "-out", "bob.csr.der", cwd=tmp_path, check=True)  # fmt: skip
    body = base64.encodebytes((tmp_path / "bob.csr.der").read_bytes())  # wrapped at 76 columns, as RFC 2045 writes it
    (tmp_path / "bob.csr.b64").write_bytes(body)
    answer = curl("--cacert", str(edge.tls_ca), "-u", f"bob:{code}", "-H", "Content-Type: application/pkcs10",
                  "-H", "Content-Transfer-Encoding: base64", "--data-binary", "@bob.csr.b64",
                  edge.url + "/.well-known/est/simpleenroll", cwd=tmp_path)  # fmt: skip
    (tmp_path / "bob.p7.der").write_bytes(base64.b64decode(answer))
    printed = openssl("pkcs7", "-inform", "DER", "-in", "bob.p7.der", "-print_certs", cwd=tmp_path, check=True).stdout
    (tmp_path / "bob.crt").write_text(printed)
    cert = x509.load_pem_x509_certificate(printed.encode())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "bob"
    openssl("verify", "-CAfile", str(chain), str(tmp_path / "bob.crt"), check=True)
