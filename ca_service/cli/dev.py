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

from ca_service.cli.common import prepare_metrics_dir
from ca_service.cli.embedded_redis import EmbeddedRedis

DEV_PROCESSES = (("api", ["serve", "--bind", "{bind}"]), ("worker", ["worker"]), ("scheduler", ["scheduler"]))


def _dev_passphrase(data_dir: Path) -> None:
    if os.environ.get("CA_KEY_PASSPHRASE") or os.environ.get("CA_KEY_PASSPHRASE_FILE"):
        return
    path = data_dir / "dev-passphrase"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    os.environ["CA_KEY_PASSPHRASE_FILE"] = str(path)


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
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="Where the API listens.")
def dev(bind: str) -> None:
    """Run everything locally: embedded Redis (if REDIS_URL is unset), init, API, worker, scheduler.

    Uses SQLite and keys under ./var (CA_DATA_DIR), prints a frontend, operator and auditor token,
    and stops everything it started on Ctrl-C.
    """
    data_dir = Path(os.environ.get("CA_DATA_DIR") or "./var").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.environ["CA_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("CA_PUBLIC_BASE_URL", f"http://{bind}")
    _dev_passphrase(data_dir)
    # one metrics directory for the API, worker and scheduler: the API's /metrics shows them all
    prepare_metrics_dir(data_dir, "dev")
    redis: EmbeddedRedis | None = None
    if not os.environ.get("REDIS_URL"):
        redis = EmbeddedRedis(data_dir)
        os.environ["REDIS_URL"] = redis.start()
        click.echo(f"started embedded Redis at {os.environ['REDIS_URL']}")
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        init = _run(["init"])
        click.echo(init.stdout.strip() or init.stderr.strip())
        if init.returncode != 0:
            raise click.ClickException("init failed")
        tokens = _dev_tokens(data_dir)
        for name, args in DEV_PROCESSES:
            argv = [sys.executable, "-m", "ca_service.cli.main", *[a.format(bind=bind) for a in args]]
            children.append((name, subprocess.Popen(argv, start_new_session=True)))
        click.echo(f"\nca-service is running at http://{bind}  (Ctrl-C stops everything)")
        for role, token in tokens.items():
            click.echo(f"  {role:9s} token: {token}")
        click.echo(f'  try: curl -H "Authorization: Bearer {tokens["operator"]}" http://{bind}/v1/crl\n')
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    click.echo(f"{name} exited with status {proc.returncode}; stopping", err=True)
                    stopping = True
            time.sleep(0.2)
    finally:
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
        click.echo("stopped")
