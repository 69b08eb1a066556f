"""Key custody end to end (DESIGN §3), with whichever backend the run uses (CA_TEST_KEY_BACKEND):
the offline root (its key removed after init, everything else keeps working), the root CRL
ceremony and its readiness warning, and where the keys are (pkcs11: no private key file)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from ca_service.context import ServiceContext
from ca_service.pki.keys import EncryptedFileKeyBackend, kdf_of
from ca_service.services.authority.hierarchy import active_ca
from ca_service.services.crl import root as root_crl
from tests.support.background import wait_for
from tests.support.cli import run_cli
from tests.support.environment import KEY_BACKEND
from tests.support.environment import TestEnvironment as Environment
from tests.support.pki import make_csr, openssl


@contextmanager
def root_key_removed(ctx: ServiceContext, test_env: Environment, tmp_path: Path) -> Iterator[None]:
    """The root key gone from where the service could find it; put back afterwards (the session's
    other tests use the same CA). File mode: the key file moved out of the data directory;
    pkcs11 mode: the root's private object relabelled on the token."""
    with ctx.sessions() as s:
        ref = active_ca(s, "root").key_ref
    if KEY_BACKEND == "file":
        path = ctx.settings.keys_dir / f"{ref}.key.pem"
        shutil.move(path, tmp_path / path.name)
        try:
            yield
        finally:
            shutil.move(tmp_path / path.name, path)
        return
    from pkcs11 import Attribute, ObjectClass

    from ca_service.pki.keys_pkcs11 import Pkcs11KeyBackend, key_id

    backend = ctx.keys
    assert isinstance(backend, Pkcs11KeyBackend)

    def relabel(old: str, new: str) -> None:
        def operation(session: object) -> None:
            query = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: old, Attribute.ID: key_id(ref)}
            (obj,) = session.get_objects(query)  # type: ignore[attr-defined]
            obj[Attribute.LABEL] = new

        backend.token.run(operation)

    relabel(ref, f"{ref}-away")
    assert not backend.exists(ref)
    try:
        yield
    finally:
        relabel(f"{ref}-away", ref)


def _env_without_root_secret(test_env: Environment) -> dict[str, str]:
    env = test_env.env()
    env.pop("CA_ROOT_KEY_PASSPHRASE", None)
    return env


def test_without_the_root_key_issuance_crl_ocsp_and_login_checks_keep_working(live, ctx, test_env, tmp_path):
    before = root_crl.stored_root_crl(ctx)
    assert before is not None
    with root_key_removed(ctx, test_env, tmp_path):
        env = _env_without_root_secret(test_env)
        live.org("acme")
        live.user("alice", "acme")
        live.user("bob", "acme")
        alice = live.issue("alice", make_csr()[1])
        bob = live.issue("bob", make_csr()[1])
        assert alice.status == 201 and bob.status == 201, (alice.json, bob.json)
        revoked = live.post(
            f"/v1/certificates/{bob.json['serial']}/revocation", role="operator", json={"reason": "key_compromise"}
        )
        assert revoked.status == 200
        # CRL publication by a worker-side process (the CLI runs the same job) with neither the
        # root key nor its passphrase: the root's CRL is served as stored, not re-signed
        run_cli("crl", "publish", env=env)
        assert root_crl.stored_root_crl(ctx).crl_number == before.crl_number
        for name in ("issuing", "root"):
            (tmp_path / f"{name}.der").write_bytes(live.get(f"/crl/{name}.crl", role=None).content)
            openssl("crl", "-inform", "DER", "-in", f"{name}.der", "-out", f"{name}.crl", cwd=tmp_path, check=True)
        (tmp_path / "chain.pem").write_text(alice.json["chain_pem"])
        (tmp_path / "alice.pem").write_text(alice.json["certificate_pem"])
        (tmp_path / "bob.pem").write_text(bob.json["certificate_pem"])
        args = ["verify", "-crl_check_all", "-CRLfile", "issuing.crl", "-CRLfile", "root.crl", "-CAfile", "chain.pem"]
        ok = openssl(*args, "alice.pem", cwd=tmp_path)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        bad = openssl(*args, "bob.pem", cwd=tmp_path)
        assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
        # OCSP (a fresh responder key signs; the scheduler's rotation job runs without the root too)
        run_cli("ocsp", "rotate", env=env)
        issuer = alice.json["chain_pem"].split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
        (tmp_path / "issuer.pem").write_text(issuer)
        for who, expected in (("alice", "good"), ("bob", "revoked")):
            out = openssl(
                "ocsp", "-issuer", "issuer.pem", "-cert", f"{who}.pem", "-url", f"{live.base_url}/ocsp",
                "-CAfile", "chain.pem", "-no_nonce", cwd=tmp_path,
            )  # fmt: skip
            assert out.returncode == 0 and f"{who}.pem: {expected}" in out.stdout, out.stdout + out.stderr
            assert "Response verify OK" in out.stdout + out.stderr
        body = {"login_id": "alice", "method": "certificate", "certificate_pem": alice.json["certificate_pem"]}
        check = live.post("/v1/login-checks", json=body)
        assert check.status == 200 and check.json["allowed"], check.json
        ready = live.get("/readyz", role=None)
        assert ready.status == 200 and ready.json["checks"]["ca_key"] == "ok", ready.json
        # the ceremony command is the one thing that needs the root key, and says so
        out = run_cli("ca", "root-crl", env=test_env.env(), check=False)
        assert out.returncode == 1 and "root key" in out.stderr and "Traceback" not in out.stderr
    if KEY_BACKEND == "file":
        out = run_cli("ca", "root-crl", env=_env_without_root_secret(test_env), check=False)
        assert out.returncode == 2 and "CA_ROOT_KEY_PASSPHRASE" in out.stderr


def test_root_crl_ceremony_and_the_readiness_warning_30_days_before_it_lapses(live, ctx, test_env, clock):
    out = run_cli("ca", "root-crl", "--days", "40", "--json", env=test_env.env())
    assert '"published": true' in out.stdout
    crl = x509.load_der_x509_crl(live.get("/crl/root.crl", role=None).content)
    with ctx.sessions() as s:
        root = x509.load_der_x509_certificate(active_ca(s, "root").der)
    assert crl.is_signature_valid(root.public_key())
    assert timedelta(days=39) < crl.next_update_utc - crl.last_update_utc <= timedelta(days=40)
    assert live.get("/readyz", role=None).json["checks"]["root_crl"] == "ok"
    clock.travel(days=11)
    ready = live.get("/readyz", role=None)
    assert ready.status == 200 and ready.json["checks"]["root_crl"].startswith("lapses in 28 days"), ready.json
    metrics = live.get("/metrics", role=None).content.decode()
    line = next(m for m in metrics.splitlines() if m.startswith('ca_crl_next_update_seconds{ca="root"}'))
    assert 27 * 86400 < float(line.split()[-1]) < 30 * 86400
    clock.travel(days=30)
    assert live.get("/readyz", role=None).json["checks"]["root_crl"].startswith("lapsed")
    clock.reset()
    run_cli("ca", "root-crl", env=test_env.env())  # the next ceremony: a year again
    wait_for(lambda: live.get("/readyz", role=None).json["checks"]["root_crl"] == "ok", timeout=10)


@pytest.mark.skipif(KEY_BACKEND != "pkcs11", reason="pkcs11 mode (CA_TEST_KEY_BACKEND=pkcs11)")
def test_pkcs11_mode_keeps_no_private_key_in_the_data_directory(live, ctx, test_env):
    live.org("acme")
    live.user("alice", "acme")
    assert live.issue("alice", make_csr()[1]).status == 201
    run_cli("ocsp", "rotate", env=test_env.env())
    found = []
    for root, _dirs, files in os.walk(test_env.data_dir):
        for name in files:
            path = Path(root) / name
            if path.is_file() and b"PRIVATE KEY" in path.read_bytes()[:1_000_000]:
                found.append(str(path))
    assert found == []
    assert not ctx.settings.keys_dir.exists() or not any(ctx.settings.keys_dir.iterdir())


@pytest.mark.skipif(KEY_BACKEND != "file", reason="file mode")
def test_file_mode_keys_use_600000_rounds_and_rekey_files_is_idempotent(ctx, test_env):
    out = run_cli("ca", "rekey-files", "--json", env=test_env.env())
    assert '"rewritten": []' in out.stdout  # written by this version already
    for path in ctx.settings.keys_dir.glob("*.key.pem"):
        assert kdf_of(path.read_bytes()) == ("pbkdf2-sha256", 600_000)
    assert isinstance(ctx.keys, EncryptedFileKeyBackend)
