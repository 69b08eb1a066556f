"""Attack: claim somebody else's certificate for EST simplereenroll by SENDING the header that
nginx is supposed to write (X-SSL-Client-Cert) through the shipped nginx. The service believes
that header from CA_TRUSTED_PROXIES (nginx's address), so nginx must never pass on a client's
own copy. A certificate is public (it is presented in every TLS handshake): with the header
forged, the attacker gets alice's successor for the attacker's key inside the renewal window.

Seen failing on the unchanged deploy/nginx template (200 and a certificate for alice with the
attacker's key); passes once the template clears the header (`proxy_set_header X-SSL-Client-Cert "";`).
The reference front end's nginx (examples/frontend) writes the header itself from the TLS
handshake, so a forged copy is replaced there as well."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_enroll import keys
from examples.frontend.proxy import FrontendProxy
from tests.support.api import Api
from tests.support.live import free_port
from tests.support.nginx import Nginx

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ca-enroll")]


@pytest.fixture(scope="module")
def proxies(live_processes, tmp_path_factory):
    api_url = live_processes.start_api(workers=1, name="forgery-api", CA_TRUSTED_PROXIES="127.0.0.1/32")
    base = tmp_path_factory.mktemp("forgery")
    shipped = Nginx(base / "shipped", [api_url.removeprefix("http://")])
    front = FrontendProxy(base / "front", free_port(), "127.0.0.1:9", api_url)
    yield api_url, shipped, front
    front.stop()
    shipped.stop()


def _reenroll_with_forged_header(url: str, verify: str, victim: x509.Certificate) -> requests.Response:
    attacker_key = keys.new_key()
    csr = keys.csr_for(attacker_key, "alice").public_bytes(Encoding.DER)
    return requests.post(
        f"{url}/.well-known/est/simplereenroll",
        data=base64.encodebytes(csr),
        headers={"Content-Type": "application/pkcs10", "Content-Transfer-Encoding": "base64",
                 "X-SSL-Client-Cert": quote(victim.public_bytes(Encoding.PEM).decode())},
        verify=verify, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("via", ["shipped", "front"])
def test_a_forged_client_certificate_header_is_not_believed(proxies, tokens, ctx, clock, via):
    api_url, shipped, front = proxies
    api = Api(tokens, base_url=api_url)
    api.org("acme")
    api.user("alice", "acme")
    csr = keys.csr_for(keys.new_key(), "alice").public_bytes(Encoding.PEM).decode()
    victim = x509.load_pem_x509_certificate(api.issue("alice", csr).json["certificate_pem"].encode())
    clock.travel(days=330)  # alice's renewal window is open
    url, cert = (shipped.base_url, shipped.cert) if via == "shipped" else (front.url, front.cert)
    r = _reenroll_with_forged_header(url, str(cert), victim)
    assert r.status_code == 401, (r.status_code, r.text[:300])
    current = api.get("/v1/users/alice").json["current_certificate"]
    assert current["serial"] == format(victim.serial_number, "x")  # still alice's own
