"""The reference front end (examples/frontend) in-process against the real CA (gunicorn): who
may claim a client certificate, sessions found by serial, the master's revocation screen."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from examples.frontend.app import create_app
from examples.frontend.ca_api import CaApi
from examples.frontend.passwords import Passwords
from tests.support.pki import make_csr

PROXY = {"REMOTE_ADDR": "127.0.0.1"}
ELSEWHERE = {"REMOTE_ADDR": "10.1.2.3"}


@pytest.fixture
def bank(live, tokens, tmp_path):
    live.org("acme")
    live.user("alice", "acme")
    live.user("bob", "acme")
    live.user("hanako", "acme", role="master")
    pems = {u: live.issue(u, make_csr()[1]).json for u in ("alice", "bob", "hanako")}
    (tmp_path / "pw.json").write_text(json.dumps({u: f"pw-{u}" for u in pems}))
    app = create_app(CaApi(live.base_url, tokens["frontend"]), Passwords(tmp_path / "pw.json"), public_url="https://bank.example")
    return app, pems


def _cert_header(pem: str) -> dict[str, str]:
    return {"X-SSL-Client-Cert": quote(pem)}  # as nginx's $ssl_client_escaped_cert


def _login(client, user: str, pem: str | None, environ=PROXY):
    headers = _cert_header(pem) if pem else {}
    return client.post("/login/certificate", data={"login_id": user, "password": f"pw-{user}"}, headers=headers,
                       environ_base=environ)  # fmt: skip


def test_a_certificate_header_counts_only_from_the_proxy(bank):
    app, pems = bank
    client = app.test_client()
    forged = _login(client, "alice", pems["alice"]["certificate_pem"], environ=ELSEWHERE)  # straight to the app
    assert forged.status_code == 403 and "電子証明書が提示されませんでした" in forged.get_data(as_text=True)
    assert _login(client, "alice", pems["alice"]["certificate_pem"]).status_code == 302
    wrong_password = client.post("/login/certificate", data={"login_id": "alice", "password": "x"},
                                 headers=_cert_header(pems["alice"]["certificate_pem"]), environ_base=PROXY)  # fmt: skip
    assert wrong_password.status_code == 401


def test_sessions_are_found_by_serial_and_bound_to_their_certificate(bank):
    app, pems = bank
    client = app.test_client()
    alice = pems["alice"]
    assert _login(client, "alice", alice["certificate_pem"]).status_code == 302
    home = client.get("/home", headers=_cert_header(alice["certificate_pem"]), environ_base=PROXY)
    assert home.status_code == 200 and alice["serial"] in home.get_data(as_text=True)
    other = client.get("/home", headers=_cert_header(pems["bob"]["certificate_pem"]), environ_base=PROXY)
    assert other.status_code == 302  # the cookie with another certificate: the session is ended
    assert client.get("/home", headers=_cert_header(alice["certificate_pem"]), environ_base=PROXY).status_code == 302
    assert _login(client, "alice", alice["certificate_pem"]).status_code == 302
    assert app.extensions["sessions"].end_by_serial(alice["serial"]) == 1  # what a webhook receiver calls
    assert client.get("/home", headers=_cert_header(alice["certificate_pem"]), environ_base=PROXY).status_code == 302


def test_the_master_revokes_general_users_only_with_csrf(bank, live):
    app, pems = bank
    master, general = app.test_client(), app.test_client()
    h = _cert_header(pems["hanako"]["certificate_pem"])
    assert _login(master, "hanako", pems["hanako"]["certificate_pem"]).status_code == 302
    page = master.get("/users/certificates", headers=h, environ_base=PROXY).get_data(as_text=True)
    assert pems["bob"]["serial"] in page and pems["alice"]["serial"] in page and pems["hanako"]["serial"] not in page
    assert _login(general, "bob", pems["bob"]["certificate_pem"]).status_code == 302
    hb = _cert_header(pems["bob"]["certificate_pem"])
    assert general.get("/users/certificates", headers=hb, environ_base=PROXY).status_code == 403
    no_csrf = master.post("/users/certificates/revoke", data={"serial": pems["bob"]["serial"]}, headers=h, environ_base=PROXY)
    assert no_csrf.status_code == 400
    assert live.get(f"/v1/certificates/{pems['bob']['serial']}").json["status"] == "active"
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    form = {"serial": pems["bob"]["serial"], "csrf": csrf, "reason": "unspecified"}
    done = master.post("/users/certificates/revoke", data=form, headers=h, environ_base=PROXY)
    assert done.status_code == 302
    revoked = live.get(f"/v1/certificates/{pems['bob']['serial']}").json
    assert revoked["status"] == "revoked"
    assert general.get("/home", headers=hb, environ_base=PROXY).status_code == 302  # bob's session ended at once
    refused = _login(general, "bob", pems["bob"]["certificate_pem"])
    assert refused.status_code == 403 and "失効しています" in refused.get_data(as_text=True)
