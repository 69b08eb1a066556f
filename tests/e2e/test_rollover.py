"""`ca-service ca rollover` end to end, with the clock moved, in an environment of its own (a
rollover changes the active issuing CA, which the session's shared CA must not see): issuing-2
under the root, new certificates from it, and the certificates of both CAs verifying, answered by
OCSP, revoked onto their own CA's CRL, and accepted by login checks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support.api import Api
from tests.support.cli import run_cli
from tests.support.environment import TestEnvironment as Environment
from tests.support.environment import create_environment
from tests.support.live import LiveProcesses
from tests.support.pki import make_csr, openssl

DAY = 86400
OFFSET_DAYS = 200  # the rollover happens this long after the first certificate


@pytest.fixture
def own_env(tmp_path: Path, worker_id: str) -> Iterator[Environment]:
    env = create_environment(tmp_path / "rollover", f"{worker_id}_ro")
    env.clock_file.write_text("0")
    yield env
    env.close()


def _issuer_cn(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode())
    return cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def _login(api: Api, login_id: str, pem: str) -> dict:
    r = api.post("/v1/login-checks", json={"login_id": login_id, "method": "certificate", "certificate_pem": pem})
    assert r.status == 200, r
    return r.json


def _at() -> str:
    """openssl's -attime: the service's moved clock (the CRLs and responses are dated by it)."""
    return str(int(time.time()) + OFFSET_DAYS * DAY)


def _ocsp(api: Api, tmp_path: Path, who: str) -> str:
    out = openssl(
        "ocsp", "-issuer", f"{who}-issuer.pem", "-cert", f"{who}.pem", "-url", f"{api.base_url}/ocsp",
        "-CAfile", f"{who}-chain.pem", "-no_nonce", "-attime", _at(),
        "-validity_period", str((OFFSET_DAYS + 1) * DAY),  # thisUpdate is checked against the real clock
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0 and "Response verify OK" in out.stdout + out.stderr, out.stdout + out.stderr
    return out.stdout


def _verify(tmp_path: Path, who: str, crl: str) -> tuple[int, str]:
    args = ["verify", "-attime", _at(), "-crl_check_all", "-CRLfile", crl, "-CRLfile", "root.crl", "-CAfile", f"{who}-chain.pem"]
    out = openssl(*args, f"{who}.pem", cwd=tmp_path)
    return out.returncode, out.stdout + out.stderr


def _save_crls(api: Api, tmp_path: Path, *names: str) -> None:
    for name in names:
        r = api.get(f"/crl/{name}.crl", role=None)
        assert r.status == 200, (name, r)
        (tmp_path / f"{name}.der").write_bytes(r.content)
        openssl("crl", "-inform", "DER", "-in", f"{name}.der", "-out", f"{name}.crl", cwd=tmp_path, check=True)


def test_rollover_both_cas_verify_answer_ocsp_revoke_and_log_in(own_env: Environment, tmp_path: Path) -> None:
    env = own_env.env()
    run_cli("init", env=env)
    tokens = {
        role: json.loads(run_cli("clients", "create", "--name", f"ro-{role}", "--role", role, "--json", env=env).stdout)["token"]
        for role in ("frontend", "operator")
    }
    procs = LiveProcesses(own_env, tokens)
    try:
        api = Api(tokens, base_url=procs.start_api(workers=2, timeout=120))
        api.org("acme")
        api.user("old", "acme")
        api.user("new", "acme")
        old = api.issue("old", make_csr()[1])
        assert old.status == 201 and _issuer_cn(old.json["certificate_pem"]).endswith("Issuing CA 1")

        own_env.clock_file.write_text(str(OFFSET_DAYS * DAY))  # the old CA's responder has expired by then
        out = run_cli("ca", "rollover", env=env)
        assert "active issuing CA: issuing-2" in out.stdout, out.stdout
        procs.processes["api"].stop()  # the documented step: restart so the API signs with issuing-2
        api = Api(tokens, base_url=procs.start_api(workers=2, name="api-2", timeout=120))

        new = api.issue("new", make_csr()[1])
        assert new.status == 201 and _issuer_cn(new.json["certificate_pem"]).endswith("Issuing CA 2"), new.json
        for who, body in (("old", old.json), ("new", new.json)):
            (tmp_path / f"{who}.pem").write_text(body["certificate_pem"])
            (tmp_path / f"{who}-chain.pem").write_text(body["chain_pem"])
            (tmp_path / f"{who}-issuer.pem").write_text(
                body["chain_pem"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
            )
        # /ca/issuing.crt and /crl/issuing.crl name the active CA; issuing-1's CRL stays published
        active = x509.load_der_x509_certificate(api.get("/ca/issuing.crt", role=None).content)
        assert active.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.endswith("Issuing CA 2")
        _save_crls(api, tmp_path, "issuing", "issuing-1", "issuing-2", "root")
        assert (tmp_path / "issuing.der").read_bytes() == (tmp_path / "issuing-2.der").read_bytes()
        assert _verify(tmp_path, "old", "issuing-1.crl")[0] == 0
        assert _verify(tmp_path, "new", "issuing.crl")[0] == 0
        assert "old.pem: good" in _ocsp(api, tmp_path, "old") and "new.pem: good" in _ocsp(api, tmp_path, "new")
        assert _login(api, "old", old.json["certificate_pem"])["allowed"]
        assert _login(api, "new", new.json["certificate_pem"])["allowed"]

        for body in (old.json, new.json):
            r = api.post(f"/v1/certificates/{body['serial']}/revocation", role="operator", json={"reason": "key_compromise"})
            assert r.status == 200, r
        run_cli("crl", "publish", env=env)
        _save_crls(api, tmp_path, "issuing", "issuing-1", "root")
        code, text = _verify(tmp_path, "old", "issuing-1.crl")
        assert code != 0 and "certificate revoked" in text
        code, text = _verify(tmp_path, "new", "issuing.crl")
        assert code != 0 and "certificate revoked" in text
        assert "old.pem: revoked" in _ocsp(api, tmp_path, "old") and "new.pem: revoked" in _ocsp(api, tmp_path, "new")
        assert not _login(api, "old", old.json["certificate_pem"])["allowed"]
        assert not _login(api, "new", new.json["certificate_pem"])["allowed"]
        # the scheduler's daily rotation keeps a responder for each CA (nothing left to rotate now)
        rotated = json.loads(run_cli("ocsp", "rotate", "--json", env=env).stdout)
        assert sorted(r["issuer_name"] for r in rotated) == ["issuing-1", "issuing-2"]
    finally:
        procs.stop_all()
