"""A real nginx (Debian's package) running the shipped config (deploy/nginx) in front of an API,
for the end-to-end tests. Reusable: give it any list of upstream addresses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "deploy" / "nginx" / "templates"
TRUST_REFRESH = ROOT / "deploy" / "nginx" / "est-trust-refresh.sh"


def render(template: Path, values: dict[str, str]) -> str:
    """envsubst as the nginx image does it: only ${NAME} of the given names (nginx's own $vars stay)."""
    return re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template.read_text())


def self_signed(directory: Path) -> tuple[Path, Path]:
    crt, key = directory / "proxy.crt", directory / "proxy.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


class Nginx:
    def __init__(self, directory: Path, upstreams: list[str], *, trust_source: str | None = None) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed(self.dir)
        self.https_port, self.http_port = free_port(), free_port()
        # what nginx verifies client certificates against, written by the shipped script from the API
        self.trust_env = {
            "CA_NGINX_TRUST_SOURCE": trust_source or f"http://{upstreams[0]}",
            "CA_NGINX_CLIENT_CA": str(self.dir / "est" / "client-ca.pem"),
            "CA_NGINX_CLIENT_CRL": str(self.dir / "est" / "client-crl.pem"),
        }
        self.refresh_trust()
        values = {
            "CA_NGINX_HTTPS_PORT": str(self.https_port),
            "CA_NGINX_HTTP_PORT": str(self.http_port),
            "CA_TLS_CERT": str(self.cert),
            "CA_TLS_KEY": str(key),
            "CA_API_UPSTREAM": upstreams[0],
            "CA_NGINX_CLIENT_CA": self.trust_env["CA_NGINX_CLIENT_CA"],
            "CA_NGINX_CLIENT_CRL": self.trust_env["CA_NGINX_CLIENT_CRL"],
        }
        conf_d = self.dir / "conf.d"
        conf_d.mkdir(exist_ok=True)
        upstream = render(TEMPLATES / "ca-service-upstream.conf.template", values)
        if len(upstreams) > 1:  # what an HA deployment does: one server line per node
            first = f"server {upstreams[0]} "
            lines = "\n".join(f"    server {u} max_fails=1 fail_timeout=5s;" for u in upstreams)
            upstream = re.sub(re.escape(first) + r"[^;]*;", lines.strip(), upstream)
        (conf_d / "ca-service-upstream.conf").write_text(upstream)
        (conf_d / "ca-service.conf").write_text(render(TEMPLATES / "ca-service.conf.template", values))
        user = "user root root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(f"  {k}_temp_path {self.dir / k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {self.dir / 'nginx.pid'};\nerror_log {self.dir / 'error.log'} warn;\n"
            f"daemon off;\nevents {{ worker_connections 2048; }}\n"
            f"http {{\n  access_log {self.dir / 'access.log'};\n{temp}\n  include {conf_d}/*.conf;\n}}\n"
        )
        binary = self.binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._log = open(self.dir / "nginx.out", "ab")
        check = subprocess.run([binary, "-t", "-c", str(self.dir / "nginx.conf")], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr}")
        self.proc = subprocess.Popen([binary, "-c", str(self.dir / "nginx.conf")], stdout=self._log, stderr=subprocess.STDOUT)
        self.base_url = f"https://localhost:{self.https_port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.base_url + "/healthz", verify=str(self.cert), timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start: {(self.dir / 'error.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def refresh_trust(self) -> None:
        """Run deploy/nginx/est-trust-refresh.sh once (as the proxy's timer does)."""
        done = subprocess.run(
            ["sh", str(TRUST_REFRESH), "once"], env={**os.environ, **self.trust_env}, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"est-trust-refresh.sh failed: {done.stderr}")

    def reload(self) -> None:
        """What the timer does after a change: nginx re-reads its CA file and CRLs (SIGHUP)."""
        subprocess.run([self.binary, "-s", "reload", "-c", str(self.dir / "nginx.conf")], check=True, capture_output=True)
        time.sleep(1)  # the new workers take over; the old ones finish their connections

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
