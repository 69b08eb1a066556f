"""`ca-enroll enroll | status | renew` (DESIGN §4c). Exit codes: ca_enroll.errors.Exit."""

from __future__ import annotations

import json
import os
import ssl
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat

from ca_enroll import keys
from ca_enroll.checks import chain_of, check_issued, serial_hex
from ca_enroll.errors import EnrollError, Exit
from ca_enroll.est import EstClient, tls_context
from ca_enroll.messages import jst, render
from ca_enroll.nssdb import Installed, NssDb, default_dir

WINDOWS_IMPORT = (
    "Import-PfxCertificate -FilePath '{path}' -CertStoreLocation Cert:\\CurrentUser\\My"
    " -Password (Read-Host -AsSecureString -Prompt 'PKCS#12 password') -Exportable:$false"
)


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", envvar="CA_ENROLL_LANG", show_default=True)(fn)
    fn = click.option(
        "--nssdb", type=click.Path(file_okay=False, path_type=Path), default=None, help="NSS database (default ~/.pki/nssdb)"
    )(fn)
    return fn


def _server(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--server", required=True, help="the bank's base URL, e.g. https://ca.bank.example")(fn)
    fn = click.option(
        "--tls-ca",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="CA file for TLS",
    )(fn)
    return fn


@click.group()
def main() -> None:
    """証明書発行アプリ / the bank's certificate issuance app."""


def _fail(lang: str, err: EnrollError, **context: Any) -> None:
    params = {**context, **{k: v for k, v in err.params.items() if v is not None}}
    if "reason_key" in params:
        params["reason"] = render(lang, params.pop("reason_key"), **params)
    if err.key == "already-holds-valid":
        serial = params.get("serial")
        params["serial_note"] = (f"（シリアル番号 {serial}）" if lang == "ja" else f" (serial {serial})") if serial else ""
    click.echo(render(lang, err.key, **params), err=True)
    sys.exit(int(err.exit_code))


@main.command()
@_server
@_common
@click.option("--login-id", required=True)
@click.option("--code-stdin", is_flag=True, help="read the enrolment code from standard input")
@click.option("--pkcs12", "pkcs12_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write a PKCS#12 (AES-256) for Windows instead of the NSS database")  # fmt: skip
def enroll(server: str, tls_ca: Path | None, lang: str, nssdb: Path | None, login_id: str, code_stdin: bool,
           pkcs12_path: Path | None) -> None:  # fmt: skip
    """電子証明書を発行してインストールする / enrol and install a certificate."""
    try:
        db = None if pkcs12_path else NssDb(nssdb or default_dir())
        if db is not None:
            db.ensure()  # fail before the code is spent, not after
        code = _read_code(lang, code_stdin)
        p12_password = _pkcs12_password(lang) if pkcs12_path else None
        client = EstClient(server, tls_ca)
        cas = client.cacerts()
        click.echo(render(lang, "generating"), err=True)
        key = keys.new_key()
        cert = client.simpleenroll(login_id, code, keys.csr_for(key, login_id))
        chain = check_issued(cert, login_id=login_id, key=key, cas=cas)
        if pkcs12_path is not None:
            _write_pkcs12(lang, pkcs12_path, login_id, key, cert, chain, p12_password or "")
        else:
            assert db is not None
            db.install(key, cert, chain)
            click.echo(render(lang, "installed", login_id=login_id, serial=serial_hex(cert),
                              not_after=jst(cert.not_valid_after_utc, lang), nssdb=db.dir))  # fmt: skip
    except EnrollError as err:
        _fail(lang, err, login_id=login_id, server=server)


def _read_code(lang: str, from_stdin: bool) -> str:
    code = sys.stdin.readline().strip() if from_stdin else click.prompt(render(lang, "code-prompt"), hide_input=True, err=True)
    if not code.strip():
        raise EnrollError(Exit.USAGE, "code-empty")
    return code.strip()


def _pkcs12_password(lang: str) -> str:
    password = os.environ.get("CA_ENROLL_PKCS12_PASSWORD")
    if password is None:
        password = click.prompt(render(lang, "pkcs12-password-prompt"), hide_input=True, confirmation_prompt=True, err=True)
    return password


def _write_pkcs12(lang: str, path: Path, login_id: str, key: PrivateKeyTypes, cert: x509.Certificate,
                  chain: list[x509.Certificate], password: str) -> None:  # fmt: skip
    data = keys.pkcs12_bytes(f"{login_id} {serial_hex(cert)}", key, cert, chain, password)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise EnrollError(Exit.STORE_FAILED, "store-failed", detail=str(exc)) from exc
    click.echo(render(lang, "pkcs12-written", path=path, command=WINDOWS_IMPORT.format(path=path.name)))


@main.command()
@_common
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def status(lang: str, nssdb: Path | None, as_json: bool) -> None:
    """インストール済みの電子証明書と有効期限（日本時間）/ installed certificates and their expiry."""
    try:
        db = NssDb(nssdb or default_dir())
        installed = db.user_certificates()
    except EnrollError as err:
        _fail(lang, err)
        return
    now = datetime.now(UTC)
    rows = [_status_row(i, now, lang) for i in installed]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(render(lang, "nothing-installed", nssdb=db.dir))
        return
    click.echo(render(lang, "status-header"))
    for row in rows:
        click.echo(f"{row['login_id']}  {row['serial']}  {row['not_after_jst']}  {row['state_text']}")


def _status_row(i: Installed, now: datetime, lang: str) -> dict[str, Any]:
    not_after = i.certificate.not_valid_after_utc
    days = (not_after - now).days
    if now > not_after:
        state, text = "expired", render(lang, "state-expired")
    elif days < 40:
        state, text = "renewable", render(lang, "state-renewable", days=days)
    else:
        state, text = "valid", render(lang, "state-valid", days=days)
    return {
        "login_id": i.login_id,
        "serial": serial_hex(i.certificate),
        "nickname": i.nickname,
        "issuer": i.certificate.issuer.rfc4514_string(),
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after_jst": jst(not_after, lang),
        "days_remaining": days,
        "state": state,
        "state_text": text,
    }


@main.command()
@_server
@_common
@click.option("--login-id", default=None, help="default: every login ID installed here")
def renew(server: str, tls_ca: Path | None, lang: str, nssdb: Path | None, login_id: str | None) -> None:
    """更新期間内の電子証明書を更新する / renew inside the renewal window (simplereenroll)."""
    try:
        db = NssDb(nssdb or default_dir())
        candidates = db.of_login_id(login_id) if login_id else db.user_certificates()
        installed = _issued_by_the_bank(candidates, EstClient(server, tls_ca).cacerts()) if candidates else []
        if not installed:
            raise EnrollError(Exit.NOT_INSTALLED, "not-installed" if login_id else "nothing-installed",
                              login_id=login_id, nssdb=db.dir)  # fmt: skip
        newest: dict[str, Installed] = {}
        for i in installed:
            lid = i.login_id or ""
            if lid not in newest or i.certificate.not_valid_after_utc > newest[lid].certificate.not_valid_after_utc:
                newest[lid] = i
        renewed, last_error = 0, None
        for current in newest.values():
            try:
                _renew_one(lang, db, server, tls_ca, current)
                renewed += 1
            except EnrollError as err:
                if login_id or len(newest) == 1 or err.exit_code != Exit.RENEWAL_NOT_OPEN:
                    raise
                last_error = err
                click.echo(render(lang, err.key, **err.params), err=True)
        if renewed == 0 and last_error is not None:
            raise last_error
    except EnrollError as err:
        _fail(lang, err, login_id=login_id or "", server=server)


def _issued_by_the_bank(installed: list[Installed], cas: list[x509.Certificate]) -> list[Installed]:
    """Only this bank's certificates: the PC's NSS database may hold other client certificates."""
    now = datetime.now(UTC)
    mine = []
    for i in installed:
        try:
            chain_of(i.certificate, cas, now)
        except EnrollError:
            continue
        mine.append(i)
    return mine


def _renew_one(lang: str, db: NssDb, server: str, tls_ca: Path | None, current: Installed) -> None:
    cert = current.certificate
    lid = current.login_id or ""
    now = datetime.now(UTC)
    not_after = cert.not_valid_after_utc
    if now >= not_after:
        raise EnrollError(Exit.RENEWAL_NOT_OPEN, "renewal-closed", login_id=lid)
    window = EstClient(server, tls_ca).renewal_info(serial_hex(cert))
    if now < window.start:
        raise EnrollError(Exit.RENEWAL_NOT_OPEN, "renewal-not-open", login_id=lid,
                          not_after=jst(not_after, lang), start=jst(window.start, lang))  # fmt: skip
    with db.exported(current) as (old_key, _):
        context = _client_auth_context(tls_ca, cert, old_key)
    client = EstClient(server, tls_ca, context=context)
    cas = client.cacerts()
    key = keys.new_key()
    try:
        successor = client.simplereenroll(keys.csr_for(key, lid))
    except EnrollError as err:
        if err.exit_code == Exit.BAD_CODE:  # a 401 here is about the certificate, not a code
            raise EnrollError(Exit.REFUSED, "renew-unauthenticated", login_id=lid) from err
        raise
    chain = check_issued(successor, login_id=lid, key=key, cas=cas)
    db.install(key, successor, chain)
    click.echo(render(lang, "renewed", login_id=lid, serial=serial_hex(successor),
                      not_after=jst(successor.not_valid_after_utc, lang), old_serial=serial_hex(cert)))  # fmt: skip


def _client_auth_context(tls_ca: Path | None, cert: x509.Certificate, key: PrivateKeyTypes) -> ssl.SSLContext:
    """TLS client authentication with the installed certificate. ssl.SSLContext loads a key only
    from a file: it is written ENCRYPTED (a random passphrase kept in memory) to a 0700 temp
    directory, loaded, and removed at once; the trade-off is a short-lived encrypted key file."""
    context = tls_context(tls_ca)
    passphrase = os.urandom(32).hex()
    with keys.private_dir() as tmp:
        key_file, cert_file = tmp / "key.pem", tmp / "cert.pem"
        key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(passphrase.encode())))
        cert_file.write_bytes(cert.public_bytes(Encoding.PEM))
        context.load_cert_chain(str(cert_file), str(key_file), password=passphrase)
    return context


if __name__ == "__main__":  # pragma: no cover
    main()
