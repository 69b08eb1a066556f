"""nginx in front of the reference front end (nginx.conf.template), and what it needs: a TLS
certificate for localhost and the CA certificates that client certificates must chain to."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def ca_chain_pem(ca_url: str) -> bytes:
    """The issuing CA and the root, as the CA publishes them (GET /ca/{name}.crt)."""
    pems = []
    for name in ("issuing", "root"):
        r = requests.get(f"{ca_url.rstrip('/')}/ca/{name}.crt", timeout=10)
        r.raise_for_status()
        pems.append(x509.load_der_x509_certificate(r.content).public_bytes(Encoding.PEM))
    return b"".join(pems)


def localhost_tls(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (a demo stand-in for the bank's server certificate),
    valid from 400 days back to 800 days on, so that the tests' PCs with moved clocks still trust it."""
    crt, key_path = directory / "tls.crt", directory / "tls.key"
    if not crt.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=400)).not_valid_after(now + timedelta(days=800))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        crt.write_bytes(cert.public_bytes(Encoding.PEM))
    return crt, key_path


class FrontendProxy:
    def __init__(self, directory: Path, https_port: int, app_addr: str, ca_url: str, env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, key = localhost_tls(self.dir)
        client_ca = self.dir / "client-ca.pem"
        client_ca.write_bytes(ca_chain_pem(ca_url))
        values = {
            "DIR": str(self.dir), "HTTPS_PORT": str(https_port), "TLS_CERT": str(self.cert), "TLS_KEY": str(key),
            "CLIENT_CA": str(client_ca), "APP": app_addr, "CA_URL": ca_url.rstrip("/"),
            "USER": "user root root;" if os.geteuid() == 0 else "",
            # nginx clears its workers' environment: keep what a test's libfaketime reads
            "ENV_KEEP": "".join(f"env {name};\n" for name in sorted(env or {}) if name.startswith("FAKETIME")),
        }  # fmt: skip
        conf = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text())
        (self.dir / "nginx.conf").write_text(conf)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._log = open(self.dir / "nginx.out", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.dir / "nginx.conf")], stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        self.url = f"https://localhost:{https_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(self.url + "/", verify=str(self.cert), timeout=2)
                return
            except requests.RequestException:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError((self.dir / "error.log").read_text(errors="replace")[-2000:]) from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
