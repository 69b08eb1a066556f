"""A real webhook receiver for the tests (issue 25): http.server in a thread that verifies every
request with the `standardwebhooks` package (a library nobody here wrote) and records what it got.

`behaviour(n)` decides the answer to the n-th request (1-based): an HTTP status, or "hang" (never
answer), or "huge" (a 200 with an endless body). `down()` / `up()` stop and restart the listener
on the same port (connection refused meanwhile)."""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Behaviour = Callable[[int], "int | str"]


def new_secret(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


class Receiver:
    def __init__(self, secret: str, behaviour: Behaviour | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.verifier = Webhook(secret)
        self.behaviour: Behaviour = behaviour or (lambda n: 200)
        self.requests = 0
        self.accepted: list[dict[str, Any]] = []  # verified events answered 2xx, in arrival order
        self.headers: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.bad_signatures = 0
        self.flood_sent = 0  # bytes of the "huge" answers that the client's socket took
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the "hang" answers at teardown
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/hooks/ca"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver.lock:
                    receiver.requests += 1
                    n = receiver.requests
                    receiver.bodies.append(body)
                    receiver.headers.append(headers)
                try:
                    event = receiver.verifier.verify(body, headers)
                except WebhookVerificationError:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                answer = receiver.behaviour(n)
                if answer == "hang":
                    receiver.release.wait(120)
                    return
                if answer == "huge":
                    self.send_response(200)
                    self.end_headers()
                    try:
                        for _ in range(100_000):  # 1.6 GB if anybody read it all
                            self.wfile.write(b"x" * 16384)
                            receiver.flood_sent += 16384
                    except OSError:
                        pass
                    with receiver.lock:
                        receiver.accepted.append(event)
                    return
                status = int(answer)
                if 200 <= status < 300:
                    with receiver.lock:
                        receiver.accepted.append(event)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://127.0.0.1:1/elsewhere")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        return Handler

    def up(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def close(self) -> None:
        self.release.set()
        self.down()

    def types(self, login_id: str | None = None) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.accepted if login_id is None or e["data"].get("login_id") == login_id]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: not reached in {timeout} s; got {self.requests} requests, {self.accepted}")
            time.sleep(0.05)


def bodies_json(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(b) for b in receiver.bodies]


def tls_server(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A receiver's TLS: a throwaway CA and a server certificate for 127.0.0.1. Returns the
    server context and the CA's PEM (the CA_WEBHOOK_CA_BUNDLE that trusts it)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "receiver test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1)).add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    (tmp / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp / "server.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    return context, tmp / "ca.pem"
