"""The EST location of the shipped nginx config (deploy/nginx, DESIGN §4c): the only place that
passes a client certificate on, as `X-SSL-Client-Cert`, and only one that nginx verified against
the CA chain and the CRLs. Behind the proxy sits a recorder of the headers that reach the
upstream (nginx is the thing under test here; the service's own side is tests/e2e/test_est_clients.py).

Run against a naive location first (`location /.well-known/est/ { proxy_pass ...;
proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert; }`, no clearing elsewhere, no
error_page), all three first tests failed: a client-written X-SSL-Client-Cert reached the upstream
from /v1/users/alice (the attack succeeded); a revoked, a foreign and a CRL-less certificate were
not forwarded but answered with nginx's own HTML 400 page instead of reaching the service's
problem+json (`optional` refuses a certificate that fails verification on every location)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_service.services.crl import publication as crl_publication
from tests.conftest import SYSTEM
from tests.support.nginx import TRUST_REFRESH, Nginx
from tests.support.pki import make_csr

pytestmark = pytest.mark.xdist_group("nginx-est")


class Recorder:
    """A plain upstream that answers 200 and keeps the headers of every request it got."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def last(self, path: str) -> dict[str, str]:
        return [r for r in self.seen if r["path"] == path][-1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(live: object, tmp_path: Path) -> Iterator[tuple[Nginx, Recorder]]:
    recorder = Recorder()
    nginx = Nginx(tmp_path / "nginx", [recorder.address], trust_source=live.base_url)  # type: ignore[attr-defined]
    try:
        yield nginx, recorder
    finally:
        nginx.stop()
        recorder.close()


def _client(api, tmp_path: Path, login_id: str) -> tuple[Path, Path, str]:
    """A certificate of this CA for `login_id` (issued through the API) and its key, as files."""
    key, csr = make_csr()
    r = api.issue(login_id, csr)
    assert r.status == 201, r
    crt, key_file = tmp_path / f"{login_id}.crt", tmp_path / f"{login_id}.key"
    crt.write_text(r.json["certificate_pem"])
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_file.write_bytes(pem)
    return crt, key_file, r.json["serial"]


def _forwarded(record: dict[str, str]) -> x509.Certificate | None:
    value = record.get("x-ssl-client-cert")
    return None if value is None else x509.load_pem_x509_certificate(unquote(value).encode())


def test_only_the_est_location_forwards_a_verified_client_certificate(api, ctx, proxy, tmp_path):
    nginx, recorder = proxy
    api.org("acme")
    api.user("alice", "acme")
    crt, key, _serial = _client(api, tmp_path, "alice")
    crl_publication.publish(ctx, force=True, actor=SYSTEM)
    nginx.refresh_trust()
    nginx.reload()
    verify = str(nginx.cert)
    est = nginx.base_url + "/.well-known/est/simplereenroll"
    forged = {"X-SSL-Client-Cert": crt.read_text().replace("\n", "%0A")}

    # the certificate nginx verified, from the EST location: forwarded, URL-escaped PEM
    r = requests.post(est, data=b"x", cert=(str(crt), str(key)), verify=verify, timeout=10)
    assert r.status_code == 200
    forwarded = _forwarded(recorder.last("/.well-known/est/simplereenroll"))
    assert forwarded == x509.load_pem_x509_certificate(crt.read_bytes())
    # the same certificate on any other location: nothing
    r = requests.post(nginx.base_url + "/v1/login-checks", data=b"x", cert=(str(crt), str(key)), verify=verify, timeout=10)
    assert r.status_code == 200 and _forwarded(recorder.last("/v1/login-checks")) is None
    # attack: the client writes the header itself, without a TLS client certificate
    for path in ("/.well-known/est/simplereenroll", "/v1/users/alice", "/console/"):
        requests.post(nginx.base_url + path, data=b"x", headers=forged, verify=verify, timeout=10)
        assert _forwarded(recorder.last(path)) is None, path
    # ... or spelled with underscores (a name gunicorn would once have mapped onto the same variable)
    requests.post(est, data=b"x", headers={"X_SSL_Client_Cert": forged["X-SSL-Client-Cert"]}, verify=verify, timeout=10)
    assert not any("ssl" in k and "client" in k for k in recorder.last("/.well-known/est/simplereenroll"))
    # ... or beside a real client certificate: the forwarded one is the verified one, once
    api.user("bob", "acme")
    other_crt, other_key, _ = _client(api, tmp_path, "bob")
    r = requests.post(est, data=b"x", headers={"X-SSL-Client-Cert": forged["X-SSL-Client-Cert"]},
                      cert=(str(other_crt), str(other_key)), verify=verify, timeout=10)  # fmt: skip
    assert r.status_code == 200
    got = _forwarded(recorder.last("/.well-known/est/simplereenroll"))
    assert got == x509.load_pem_x509_certificate(other_crt.read_bytes())
    # a plain-HTTP request never carries one (and EST is TLS-only)
    plain = f"http://127.0.0.1:{nginx.http_port}"
    assert requests.post(plain + "/.well-known/est/simplereenroll", data=b"x", headers=forged, timeout=10).status_code == 403


def test_a_revoked_or_foreign_certificate_is_not_forwarded(api, ctx, proxy, tmp_path):
    nginx, recorder = proxy
    api.org("acme")
    api.user("alice", "acme")
    crt, key, serial = _client(api, tmp_path, "alice")
    r = api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"})
    assert r.status == 200, r
    crl_publication.publish(ctx, force=True, actor=SYSTEM)
    nginx.refresh_trust()
    nginx.reload()
    verify = str(nginx.cert)
    est = nginx.base_url + "/.well-known/est/simplereenroll"
    # revoked (on the CRL nginx holds): the request still reaches the service, without the header
    # (nginx's own 400 page would not be problem+json)
    r = requests.post(est, data=b"x", cert=(str(crt), str(key)), verify=verify, timeout=10)
    assert r.status_code == 200
    assert _forwarded(recorder.last("/.well-known/est/simplereenroll")) is None
    assert "SSL certificate error" not in r.text
    # a certificate of another CA, with alice's name
    foreign_key, foreign_crt = tmp_path / "foreign.key", tmp_path / "foreign.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
         "-subj", "/CN=alice", "-keyout", str(foreign_key), "-out", str(foreign_crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    recorder.seen.clear()
    r = requests.post(est, data=b"x", cert=(str(foreign_crt), str(foreign_key)), verify=verify, timeout=10)
    assert r.status_code == 200 and _forwarded(recorder.last("/.well-known/est/simplereenroll")) is None


def test_without_the_issuing_crl_every_client_certificate_is_refused(api, ctx, proxy, tmp_path):
    """Fail closed: nginx checks the CRL of every CA in the chain; with none for the issuing CA
    (nothing published yet, or the refresh keeps failing) no certificate is forwarded."""
    nginx, recorder = proxy
    api.org("acme")
    api.user("alice", "acme")
    crt, key, _serial = _client(api, tmp_path, "alice")
    assert "X509 CRL" in Path(nginx.trust_env["CA_NGINX_CLIENT_CRL"]).read_text()  # the root's only
    started = time.monotonic()
    r = requests.post(nginx.base_url + "/.well-known/est/simplereenroll", data=b"x", cert=(str(crt), str(key)),
                      verify=str(nginx.cert), timeout=10)  # fmt: skip
    assert r.status_code == 200 and time.monotonic() - started < 5
    assert _forwarded(recorder.last("/.well-known/est/simplereenroll")) is None


def test_the_refresh_loop_brings_a_revocation_to_nginx(api, ctx, proxy, tmp_path):
    """deploy/nginx/est-trust-refresh.sh's timer: a new CRL is fetched, nginx checked and reloaded,
    and the revoked certificate is no longer forwarded."""
    nginx, recorder = proxy
    api.org("acme")
    api.user("alice", "acme")
    crt, key, serial = _client(api, tmp_path, "alice")
    crl_publication.publish(ctx, force=True, actor=SYSTEM)
    nginx.refresh_trust()
    nginx.reload()
    est = nginx.base_url + "/.well-known/est/simplereenroll"

    def forwarded() -> bool:
        requests.post(est, data=b"x", cert=(str(crt), str(key)), verify=str(nginx.cert), timeout=10)
        return _forwarded(recorder.last("/.well-known/est/simplereenroll")) is not None

    assert forwarded()
    env = {**os.environ, **nginx.trust_env, "CA_NGINX_TRUST_REFRESH_SECONDS": "1",
           "CA_NGINX_CONF": str(nginx.dir / "nginx.conf"), "PATH": f"{Path(nginx.binary).parent}:/usr/bin:/bin"}  # fmt: skip
    loop = subprocess.Popen(
        ["sh", str(TRUST_REFRESH), "loop"], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        r = api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"})
        assert r.status == 200, r
        crl_publication.publish(ctx, force=True, actor=SYSTEM)
        deadline = time.monotonic() + 20
        while forwarded():
            assert time.monotonic() < deadline, "nginx never got the new CRL"
            time.sleep(0.5)
    finally:
        loop.terminate()
        _out, err = loop.communicate(timeout=10)
    assert "nginx reloaded" in err, err
