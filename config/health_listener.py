"""Liveness that no business request can queue behind.

A sync gunicorn worker serves one request at a time: with every worker waiting on a database
lock, `GET /healthz` on the API port waited behind them (a gthread worker only moves the
limit to its thread count, and a WSGI middleware such as api/ocsp_fast.py still needs a free
worker). When CA_HEALTH_BIND is set, gunicorn's arbiter (the process that supervises the workers
and kills one that stops heart-beating for CA_GUNICORN_TIMEOUT) answers `GET /healthz` there
from a thread of its own, started by the `when_ready` hook in config/gunicorn.conf.py: 200
`{"status": "ok"}` while it has live workers, 503 when it has none, 404 for anything else. It
touches no database, Redis or worker. Readiness stays `/readyz` on the API port.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("ca_service.health")


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not port.isdigit() or not host:
        raise ValueError(f"CA_HEALTH_BIND must be HOST:PORT, not {bind!r}")
    return host.strip("[]"), int(port)


def start(bind: str, arbiter: Any) -> ThreadingHTTPServer:
    """Serve liveness on `bind` from a daemon thread of the arbiter (`arbiter.WORKERS`: its live
    workers). Raises OSError if the address cannot be bound (gunicorn then stops: a probe of a
    missing listener would only restart the container forever)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "ca-service-health"
        sys_version = ""

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/healthz":
                self._answer(404, {"status": "not-found"})
                return
            workers = len(getattr(arbiter, "WORKERS", {}) or {})
            ok = workers > 0
            self._answer(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": {"workers": str(workers)}})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None  # a probe every few seconds is not worth a log line

    server = ThreadingHTTPServer(split_bind(bind), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-listener", daemon=True).start()
    log.info("liveness on http://%s/healthz (gunicorn arbiter)", bind)
    return server
