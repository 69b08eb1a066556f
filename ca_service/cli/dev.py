"""`ca-service dev`: everything on one machine with the embedded defaults."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click

from ca_service.cli.common import fail, prepare_metrics_dir
from ca_service.cli.dev_support import (
    DataDirLock,
    DevError,
    MailSink,
    check_port_free,
    probe_url,
    wait_ready,
    write_env_file,
)
from ca_service.cli.embedded_redis import EmbeddedRedis

DEV_PROCESSES = (
    ("api", ["serve", "--bind", "{bind}"]),
    ("worker", ["worker", "--queues", "crl,mail,default"]),
    ("webhook-worker", ["worker", "--queues", "webhooks"]),  # a slow receiver never delays a CRL or an email
    ("scheduler", ["scheduler"]),
)


def _dev_secret(data_dir: Path, name: str, file_name: str) -> None:
    """A random secret kept in the data directory (mode 600) as NAME_FILE, unless NAME or
    NAME_FILE is set: the CA keys' passphrase, the console's session key (shared by the workers)."""
    if os.environ.get(name) or os.environ.get(f"{name}_FILE"):
        return
    path = data_dir / file_name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    os.environ[f"{name}_FILE"] = str(path)


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ca_service.cli.main", *args], text=True, capture_output=True, check=False)


def _dev_tokens(data_dir: Path) -> dict[str, str]:
    """Dev-only convenience: the tokens of the dev clients, kept (mode 600) under the data dir."""
    path = data_dir / "dev-tokens.json"
    tokens: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    for role in ("frontend", "operator", "auditor"):
        if role in tokens:
            continue
        out = _run(["clients", "create", "--name", f"dev-{role}-{secrets.token_hex(3)}", "--role", role, "--json"])
        if out.returncode != 0:
            raise click.ClickException(out.stderr.strip())
        tokens[role] = json.loads(out.stdout)["token"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh)
    return tokens


@click.command()
@click.option(
    "--bind", envvar="CA_BIND", default="127.0.0.1:8000", show_default=True, help="Where the API listens (env: CA_BIND)."
)
def dev(bind: str) -> None:
    """Run everything locally: embedded Redis (if REDIS_URL is unset), init, API, worker, scheduler,
    and a mail sink writing the emails to var/mail/ (if CA_SMTP_HOST is unset).

    Uses SQLite and keys under ./var (CA_DATA_DIR); prints a frontend, operator and auditor token once
    the API answers /readyz; writes var/dev.env for the CLI in another shell; stops everything it
    started on Ctrl-C. Exits 1 with one line if any part fails.
    """
    data_dir = Path(os.environ.get("CA_DATA_DIR") or "./var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = DataDirLock(data_dir)
    try:
        lock.acquire()
        check_port_free(bind)
    except DevError as exc:
        fail(str(exc), 1)
    try:
        status = _run_dev(bind, data_dir)
    finally:
        lock.release()
    sys.exit(status)


def banner(base_url: str, tokens: dict[str, str], env_file: Path) -> str:
    """What `make run` prints once everything is ready (after the start-up logs, and kept in
    var/dev-banner.txt while it runs: `cat var/dev-banner.txt` when the JSON logs scrolled it away)."""
    python = Path(sys.executable)
    lines = [
        "",
        "=" * 78,
        f"ca-service is running at {base_url}  (Ctrl-C stops everything)",
        *(f"  {role:9s} token: {token}" for role, token in tokens.items()),
        f'  try: curl -H "Authorization: Bearer {tokens["operator"]}" {base_url}/v1/crl',
        f"  the help desk's console: {base_url}/console/",
        f"  the CLI in another shell: set -a; . {env_file}; set +a",
        "  a console login (once): ca-service operators create --username you --json",
        "    (prints the password and totp_secret); the one-time code in dev:",
        f"    {python} -c 'import pyotp,sys; print(pyotp.TOTP(sys.argv[1]).now())' TOTP_SECRET",
        f"  this banner again: cat {env_file.parent / 'dev-banner.txt'}",
        "=" * 78,
        "",
    ]
    return "\n".join(lines)


def _run_dev(bind: str, data_dir: Path) -> int:
    env_file = data_dir / "dev.env"
    banner_file = data_dir / "dev-banner.txt"
    os.environ["CA_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{data_dir / 'ca.sqlite3'}")
    base_url = probe_url(bind)
    os.environ.setdefault("CA_PUBLIC_BASE_URL", base_url)  # the certificate URLs follow the port
    os.environ.setdefault("CA_GUNICORN_WORKERS", "2")  # a laptop's worth, not 2 x cores + 1
    os.environ["CA_DEV_MODE"] = "1"  # dev only: the root key may share the online keys' passphrase
    _dev_secret(data_dir, "CA_KEY_PASSPHRASE", "dev-passphrase")
    _dev_secret(data_dir, "CA_CONSOLE_SECRET_KEY", "console-secret")  # the operator console's sessions
    # one metrics directory for the API, worker and scheduler: the API's /metrics shows them all
    prepare_metrics_dir(data_dir, "dev")
    redis: EmbeddedRedis | None = None
    mail: MailSink | None = None
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    try:
        if not os.environ.get("REDIS_URL"):
            redis = EmbeddedRedis(data_dir)
            os.environ["REDIS_URL"] = redis.start()
            click.echo(f"started embedded Redis at {os.environ['REDIS_URL']}")
        if not os.environ.get("CA_SMTP_HOST"):
            mail = MailSink(data_dir / "mail")
            os.environ.update(CA_SMTP_HOST="127.0.0.1", CA_SMTP_PORT=str(mail.start()))
            click.echo(f"mail sink on 127.0.0.1:{os.environ['CA_SMTP_PORT']}: emails are written to {mail.directory}/")
        init = _run(["init"])
        click.echo(init.stdout.strip() or init.stderr.strip())
        if init.returncode != 0:
            raise DevError("`ca-service init` failed (its output is above)")
        tokens = _dev_tokens(data_dir)
        for name, args in DEV_PROCESSES:
            argv = [sys.executable, "-m", "ca_service.cli.main", *[a.format(bind=bind) for a in args]]
            children.append((name, subprocess.Popen(argv, start_new_session=True)))
        if wait_ready(base_url, children, lambda: stopping):
            write_env_file(env_file, dict(os.environ))
            text = banner(base_url, tokens, env_file)
            banner_file.write_text(text)
            click.echo(text)
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    raise DevError(f"{name} exited with status {proc.returncode}; stopped everything")
            time.sleep(0.2)
    except (DevError, RuntimeError, click.ClickException) as exc:
        message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
        click.echo(f"ca-service: error: {message}", err=True)
        status = 1
    finally:
        env_file.unlink(missing_ok=True)
        banner_file.unlink(missing_ok=True)
        for _name, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _name, proc in children:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis is not None:
            redis.stop()
        if mail is not None:
            mail.stop()
        click.echo("stopped")
    return status
