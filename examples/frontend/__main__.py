"""`python -m examples.frontend`: the reference front end beside `make run`, nginx in front.

    make run                       # the CA on http://127.0.0.1:8000 (prints the tokens)
    .venv/bin/python -m examples.frontend       # then open https://localhost:8443/

The frontend token comes from CA_FRONTEND_TOKEN, else from var/dev-tokens.json (`make run`).
With FRONTEND_WEBHOOK_SECRET (the `whsec_…` the CA has in CA_WEBHOOK_SECRET) the app receives the
CA's events at http://127.0.0.1:<--app-port>/ca-events (README, "Ending sessions at once")."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from pathlib import Path

import click
from werkzeug.serving import make_server

from examples.frontend.app import create_app
from examples.frontend.ca_api import CaApi
from examples.frontend.passwords import Passwords
from examples.frontend.proxy import FrontendProxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _token(data_dir: Path) -> str:
    token = os.environ.get("CA_FRONTEND_TOKEN")
    if token:
        return token
    tokens = data_dir / "dev-tokens.json"
    if not tokens.exists():
        raise click.ClickException("set CA_FRONTEND_TOKEN (a frontend client's token), or start `make run` first")
    return str(json.loads(tokens.read_text())["frontend"])


@click.command()
@click.option("--ca-url", default="http://127.0.0.1:8000", show_default=True, help="the CA's API (inside the bank)")
@click.option("--port", default=8443, show_default=True, help="nginx's HTTPS port (what the browser opens)")
@click.option("--app-port", default=0, help="the app's own port behind nginx (the CA posts its events there); 0: any")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path("var"), show_default=True)
def main(ca_url: str, port: int, app_port: int, data_dir: Path) -> None:
    app_port = app_port or _free_port()
    public_url = f"https://localhost:{port}"
    secret = os.environ.get("FRONTEND_WEBHOOK_SECRET") or None
    app = create_app(CaApi(ca_url, _token(data_dir)), Passwords(), public_url=public_url, webhook_secret=secret)
    server = make_server("127.0.0.1", app_port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = FrontendProxy((data_dir / "frontend").resolve(), port, f"127.0.0.1:{app_port}", ca_url)
    click.echo(f"reference front end: {public_url}/  (TLS certificate: {proxy.cert}; Ctrl-C stops)")
    if secret:
        click.echo(f"CA events: CA_WEBHOOK_URLS=http://127.0.0.1:{app_port}/ca-events (and the same CA_WEBHOOK_SECRET)")
    click.echo(f"ca-enroll: ca-enroll enroll --server {public_url} --tls-ca {proxy.cert} --login-id ID")
    signal.signal(signal.SIGTERM, _stop)  # stop nginx with it, also when started in the background
    try:
        proxy.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        server.shutdown()


if __name__ == "__main__":
    main()
