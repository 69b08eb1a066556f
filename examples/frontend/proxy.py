"""nginx in front of the reference front end (nginx.conf.template), and what it needs: a TLS
certificate for localhost and the CA certificates that client certificates must chain to."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

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
    crt, key = directory / "tls.crt", directory / "tls.key"
    if not crt.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(key), "-out", str(crt)],
            check=True, capture_output=True,
        )  # fmt: skip
    return crt, key


class FrontendProxy:
    def __init__(self, directory: Path, https_port: int, app_addr: str, ca_url: str) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, key = localhost_tls(self.dir)
        client_ca = self.dir / "client-ca.pem"
        client_ca.write_bytes(ca_chain_pem(ca_url))
        values = {
            "DIR": str(self.dir), "HTTPS_PORT": str(https_port), "TLS_CERT": str(self.cert), "TLS_KEY": str(key),
            "CLIENT_CA": str(client_ca), "APP": app_addr, "CA_URL": ca_url.rstrip("/"),
            "USER": "user root root;" if os.geteuid() == 0 else "",
        }  # fmt: skip
        conf = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values[m.group(1)], TEMPLATE.read_text())
        (self.dir / "nginx.conf").write_text(conf)
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._log = open(self.dir / "nginx.out", "ab")  # closed in stop()
        self.proc = subprocess.Popen([binary, "-c", str(self.dir / "nginx.conf")], stdout=self._log, stderr=subprocess.STDOUT)
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
