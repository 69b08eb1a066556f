"""ca-enroll end to end (issue 24, DESIGN §4c): the installed console script against a real
gunicorn behind nginx, into a temporary NSS database (certutil/pk12util) or a PKCS#12; `status`
in Japan time; the failures' exit codes and messages; `renew` with TLS client authentication
inside the renewal window only (bank and PC clocks moved together: TimeMachine + faketime).
enroll and the failures go through the shipped nginx (deploy/nginx); renew through the reference
front end's nginx (examples/frontend), whose TLS asks for the client certificate."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from examples.frontend.proxy import FrontendProxy
from tests.support.api import Api
from tests.support.enroll import Pc, mint_code, no_private_key_left
from tests.support.live import free_port
from tests.support.nginx import Nginx
from tests.support.pki import openssl

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("ca-enroll")]


class Bank:
    def __init__(self, api_url: str, shipped: Nginx, front: FrontendProxy, tokens: dict[str, str]) -> None:
        self.api = Api(tokens, base_url=api_url)
        self.shipped, self.front = shipped, front

    def est_args(self, via: str = "shipped") -> list[str]:
        proxy_url, cert = (self.shipped.base_url, self.shipped.cert) if via == "shipped" else (self.front.url, self.front.cert)
        return ["--server", proxy_url, "--tls-ca", str(cert)]


@pytest.fixture(scope="module")
def bank_processes(live_processes, tmp_path_factory) -> Iterator[tuple[str, Nginx, FrontendProxy]]:
    api_url = live_processes.start_api(workers=2, name="enroll-api", CA_TRUSTED_PROXIES="127.0.0.1/32")
    upstream = api_url.removeprefix("http://")
    base = tmp_path_factory.mktemp("enroll-proxies")
    shipped = Nginx(base / "shipped", [upstream])
    try:
        front = FrontendProxy(base / "front", free_port(), "127.0.0.1:9", api_url)
    except Exception:
        shipped.stop()
        raise
    yield api_url, shipped, front
    front.stop()
    shipped.stop()


@pytest.fixture
def bank(bank_processes, tokens, ctx) -> Bank:
    api_url, shipped, front = bank_processes
    b = Bank(api_url, shipped, front, tokens)
    b.api.org("acme", name="Acme 株式会社")
    for login_id in ("alice", "bob"):
        b.api.user(login_id, "acme")
    return b


@pytest.fixture
def pc(tmp_path) -> Pc:
    return Pc(tmp_path / "home")


def _chain_pem(api: Api) -> bytes:
    return b"".join(
        x509.load_der_x509_certificate(api.get(f"/ca/{n}.crt", role=None).content).public_bytes(Encoding.PEM)
        for n in ("issuing", "root")
    )


def test_enroll_installs_into_nss_and_status_shows_it_in_japan_time(bank, pc, tmp_path):
    r = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", stdin=mint_code(bank.api, "alice") + "\n")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "電子証明書をインストールしました" in r.stdout and "すべてのブラウザを閉じてください" in r.stdout
    [cert] = pc.certificates()
    current = bank.api.get("/v1/users/alice").json["current_certificate"]
    assert format(cert.serial_number, "x") == current["serial"]
    assert cert.subject.rfc4514_string().startswith("CN=alice")
    assert stat.S_IMODE(pc.nssdb.stat().st_mode) == 0o700  # ~/.pki/nssdb created, private
    (tmp_path / "chain.pem").write_bytes(_chain_pem(bank.api))
    (tmp_path / "leaf.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    verify = openssl("verify", "-CAfile", str(tmp_path / "chain.pem"), "-purpose", "sslclient", str(tmp_path / "leaf.pem"))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert no_private_key_left(pc.home) == []

    status = pc.run("status", "--json")
    [row] = json.loads(status.stdout)
    assert (row["login_id"], row["serial"], row["state"]) == ("alice", current["serial"], "valid")
    details = bank.api.get(f"/v1/certificates/{current['serial']}").json
    assert row["not_after"] == details["not_after"]  # Q9: the same instant as the API's...
    nss_after = pc.not_after_in_certutil(row["nickname"])  # ...and as NSS shows it
    assert cert.not_valid_after_utc.strftime("%a %b %d %H:%M:%S %Y") == nss_after
    assert "日本時間" in pc.run("status").stdout

    # already holding a valid certificate: a second enrolment is refused, the first stays
    again = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", stdin=mint_code(bank.api, "alice"))
    assert again.returncode == 7, again.stderr
    assert "有効な電子証明書があります" in again.stderr and current["serial"] in again.stderr
    assert pc.certificates() == [cert]


def test_wrong_code_unreachable_and_untrusted_tls_are_clear_failures(bank, pc):
    mint_code(bank.api, "alice")
    wrong = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", stdin="ABCD-EFGH-JKMN-PQRS\n")
    assert wrong.returncode == 5 and "発行コードが正しくない" in wrong.stderr, wrong.stderr
    english = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", "--lang", "en", stdin="ABCD-EFGH-JKMN")
    assert english.returncode == 5 and "enrolment code is wrong" in english.stderr
    assert pc.certificates() == []
    untrusted = pc.run("enroll", "--server", bank.shipped.base_url, "--login-id", "alice", "--code-stdin", stdin="X")
    assert untrusted.returncode == 4 and "TLS証明書を信頼できません" in untrusted.stderr, untrusted.stderr
    closed = f"https://127.0.0.1:{free_port()}"
    unreachable = pc.run("enroll", "--server", closed, "--login-id", "alice", "--code-stdin", stdin="X")
    assert unreachable.returncode == 3 and "接続できません" in unreachable.stderr, unreachable.stderr


def test_expired_code_is_refused(bank, pc, clock):
    code = mint_code(bank.api, "bob")
    clock.travel(minutes=61)
    r = pc.run("enroll", *bank.est_args(), "--login-id", "bob", "--code-stdin", stdin=code, days=61 / 1440)
    assert r.returncode == 5 and "有効期限切れ" in r.stderr, r.stderr


def test_pkcs12_for_windows(bank, pc, tmp_path):
    out = tmp_path / "alice.p12"
    r = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", "--pkcs12", str(out),
               stdin=mint_code(bank.api, "alice"), CA_ENROLL_PKCS12_PASSWORD="pw-for-windows")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Import-PfxCertificate" in r.stdout and "Cert:\\CurrentUser\\My" in r.stdout and "-Exportable:$false" in r.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    info = openssl("pkcs12", "-info", "-noout", "-in", str(out), "-passin", "pass:pw-for-windows")
    assert info.returncode == 0 and "AES-256-CBC" in info.stderr, info.stderr
    assert pc.certificates() == []  # nothing went into NSS
    assert no_private_key_left(pc.home, tmp_path) == []


def test_renew_only_inside_the_window_replaces_the_certificate(bank, pc, clock):
    r = pc.run("enroll", *bank.est_args("front"), "--login-id", "alice", "--code-stdin", stdin=mint_code(bank.api, "alice"))
    assert r.returncode == 0, r.stderr
    [old] = pc.certificates()
    foreign = _import_foreign_client_certificate(pc)  # another service's certificate on the same PC
    early = pc.run("renew", *bank.est_args("front"))
    assert early.returncode == 8 and "まだ更新できません" in early.stderr, early.stderr
    assert set(pc.certificates()) == {old, foreign}

    clock.travel(days=330)  # 35 days left: inside the window (40 days before notAfter)
    renewed = pc.run("renew", *bank.est_args("front"), days=330)
    assert renewed.returncode == 0, renewed.stderr + renewed.stdout
    [new] = [c for c in pc.certificates() if c != foreign]  # the other certificate is left alone
    assert foreign in pc.certificates()
    old_serial, new_serial = format(old.serial_number, "x"), format(new.serial_number, "x")
    assert new_serial != old_serial and new_serial in renewed.stdout and old_serial in renewed.stdout
    old_now = bank.api.get(f"/v1/certificates/{old_serial}").json
    assert (old_now["status"], old_now["revocation_reason"], old_now["superseded_by"]) == ("revoked", "superseded", new_serial)
    assert bank.api.get("/v1/users/alice").json["current_certificate"]["serial"] == new_serial
    assert no_private_key_left(pc.home) == []
    status = json.loads(pc.run("status", "--json", days=330).stdout)
    assert sorted(row["serial"] for row in status) == sorted([new_serial, format(foreign.serial_number, "x")])


def _import_foreign_client_certificate(pc: Pc) -> x509.Certificate:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    from ca_enroll import keys

    key = keys.new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone at another service")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=800)).sign(key, hashes.SHA256())
    )  # fmt: skip
    p12 = pc.tmp / "foreign.p12"
    p12.write_bytes(keys.pkcs12_bytes("other service", key, cert, [], "pw"))
    (pc.tmp / "pw").write_text("pw")
    subprocess.run(["pk12util", "-i", str(p12), "-d", f"sql:{pc.nssdb}", "-w", str(pc.tmp / "pw"), "-k", "/dev/null"],
                   check=True, capture_output=True)  # fmt: skip
    p12.unlink()
    (pc.tmp / "pw").unlink()
    return cert


def test_renew_without_a_certificate(bank, pc):
    r = pc.run("renew", *bank.est_args("front"), "--login-id", "alice", "--lang", "en")
    assert r.returncode == 12 and "No certificate of alice" in r.stderr


@pytest.mark.parametrize(
    ("status", "body", "exit_code"),
    [
        (409, {"code": "login-method-not-certificate"}, 6),
        (409, {"code": "active-certificate-exists", "detail": "serial 0a1b2c3d4e5f60718293 is valid"}, 7),
        (401, {"code": "unauthenticated"}, 5),
        (409, {"code": "certificate-not-active"}, 8),
        (503, {"code": "database-unavailable"}, 11),
    ],
)
def test_every_refusal_has_its_exit_code(status, body, exit_code):
    import requests

    from ca_enroll.est import problem_error

    r = requests.models.Response()
    r.status_code, r._content = status, json.dumps(body).encode()
    r.headers["Content-Type"] = "application/problem+json"
    assert problem_error(r).exit_code == exit_code


def test_no_private_key_helper_finds_a_plain_key(tmp_path):
    (tmp_path / "k.pem").write_text(openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256").stdout)
    assert no_private_key_left(tmp_path) == [tmp_path / "k.pem"]
    os.remove(tmp_path / "k.pem")
    assert no_private_key_left(tmp_path) == []


def test_a_failed_install_leaves_no_key_behind(bank, pc):
    """pk12util fails mid-install: the temporary PKCS#12 and its password file are gone anyway."""
    pc.nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{pc.nssdb}", "--empty-password"], check=True)
    (pc.nssdb / "key4.db").write_bytes(b"not a database")  # the key store breaks at pk12util
    r = pc.run("enroll", *bank.est_args(), "--login-id", "alice", "--code-stdin", stdin=mint_code(bank.api, "alice"))
    assert r.returncode == 10 and "保存できませんでした" in r.stderr, r.stderr + r.stdout
    assert no_private_key_left(pc.home) == [] and list(pc.tmp.iterdir()) == []


def test_renew_of_a_revoked_certificate(bank, pc, clock):
    r = pc.run("enroll", *bank.est_args("front"), "--login-id", "alice", "--code-stdin", stdin=mint_code(bank.api, "alice"))
    assert r.returncode == 0, r.stderr
    [cert] = pc.certificates()
    serial = format(cert.serial_number, "x")
    revoked = bank.api.post(f"/v1/certificates/{serial}/revocation", role="operator", json={"reason": "key_compromise"})
    assert revoked.status == 200, revoked
    clock.travel(days=330)
    renewed = pc.run("renew", *bank.est_args("front"), days=330)
    assert renewed.returncode == 11, (renewed.returncode, renewed.stderr)  # the server's 401: not a code problem
    assert "認証を受け付けませんでした" in renewed.stderr and "電子証明書発行" in renewed.stderr  # told to enrol anew
    assert pc.certificates() == [cert]
