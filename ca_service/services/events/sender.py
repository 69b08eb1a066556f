"""One delivery attempt: a POST with a connect timeout and a hard total deadline (a watchdog
shuts the socket down, so a receiver trickling bytes cannot hold the worker), no redirect
followed (a 3xx is a failure), TLS verified against CA_WEBHOOK_CA_BUNDLE or the system store,
and at most MAX_BODY bytes of the answer read, then the connection closed."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MAX_BODY = 4096
_ERROR_CHARS = 200


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None


def _abort(conn: http.client.HTTPConnection, fired: threading.Event) -> None:
    fired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _printable(data: bytes) -> str:
    text = data[:_ERROR_CHARS].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else " " for c in text).strip()


def post(
    url: str, body: bytes, headers: dict[str, str], *, connect_timeout: float, timeout: float, ca_bundle: Path | None
) -> Outcome:
    parts = urlsplit(url)
    host = parts.hostname or ""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        tls = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        conn = http.client.HTTPSConnection(host, parts.port, timeout=connect_timeout, context=tls)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=connect_timeout)
    fired = threading.Event()
    watchdog = threading.Timer(timeout, _abort, (conn, fired))
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    try:
        conn.connect()
        if conn.sock is not None:  # a backstop: the watchdog ends the attempt at the deadline
            conn.sock.settimeout(max(0.05, timeout - (time.monotonic() - started)) + 1.0)
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        head = response.read(MAX_BODY)  # never more: the rest is dropped with the connection
        status = response.status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if fired.is_set() or time.monotonic() - started >= timeout:
            return Outcome(False, None, f"no answer within {timeout:g} s")
        return Outcome(False, None, f"{type(exc).__name__}: {str(exc)[:_ERROR_CHARS]}")
    finally:
        watchdog.cancel()
        conn.close()
    if 200 <= status < 300:
        return Outcome(True, status, None)
    detail = _printable(head)
    return Outcome(False, status, f"HTTP {status}" + (f": {detail}" if detail else ""))
