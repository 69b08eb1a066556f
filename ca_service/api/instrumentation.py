"""HTTP metrics per route (the URL rule, never the raw path) and the /metrics endpoint."""

from __future__ import annotations

import ipaddress
import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, abort, g, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from ca_service import metrics
from ca_service.api.auth import PUBLIC, roles
from ca_service.api.proxy import FORWARDED
from ca_service.api.responses import ctx
from ca_service.metrics_collectors import render
from config.logging import bind as bind_log
from config.logging import log_context

access_log = logging.getLogger("ca_service.access")
_MAX_SUBJECT = 64  # a login ID's or a serial's longest valid form
# Label values are bounded: any other method (clients can invent them) counts as "other", any
# path no route matches as "unmatched", so no client can add series to /metrics.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _start() -> None:
    g.started = time.perf_counter()
    g.log_token = log_context.set({})  # filled by app._before_request and auth


def request_id_from(incoming: str) -> str:
    """The caller's X-Request-ID if it is a sane one, else a new one."""
    return incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


def record(method: str, route: str, status: int, elapsed: float, subjects: dict[str, Any]) -> None:
    """Count a finished request and write its access log line (in the request's log context)."""
    label = method if method in METHODS else "other"
    metrics.HTTP_REQUESTS.labels(label, route, str(status)).inc()
    metrics.HTTP_LATENCY.labels(label, route).observe(elapsed)
    access_log.info("%s %s %s %.1fms", method, route, status, elapsed * 1000, extra=subjects)


def _finish(resp: Response) -> Response:
    started = g.get("started")
    if started is not None:
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        client = g.get("client")
        bind_log(request_id=g.get("request_id"), api_client=client.name if client else None)
        record(request.method, route, resp.status_code, time.perf_counter() - started, _subjects(resp))
    token = g.pop("log_token", None)
    if token is not None:
        log_context.reset(token)
    return resp


def _subjects(resp: Response) -> dict[str, Any]:
    """Who and what a request was about, for its access log line: the bank user acting (a body's
    `acting_login_id`, else the login ID in the path or the body) and the certificate's serial
    (in the path, else the one a POST's 201 JSON answer names: a new certificate's).
    Only an authenticated client's body is looked at, and every value is cut to a login ID's
    length: what an anonymous caller sends never reaches the log."""
    args = request.view_args or {}
    body = None
    try:
        if request.is_json and g.get("client") is not None:  # an anonymous caller's body never reaches the log
            body = request.get_json(silent=True)  # already parsed: cached
    except (HTTPException, RecursionError):  # too large (never read) or refused as too deep: not for the log
        body = None
    body = body if isinstance(body, dict) else {}
    acting = body.get("acting_login_id") or args.get("login_id") or body.get("login_id")
    serial = args.get("serial")
    if serial is None and request.method == "POST" and resp.status_code == 201 and resp.is_json:  # issued
        answer = resp.get_json(silent=True)
        serial = answer.get("serial") if isinstance(answer, dict) else None
    return {"acting_login_id": _clip(acting), "serial": _clip(serial)}


def _clip(value: object) -> str | None:
    return value[:_MAX_SUBJECT] if isinstance(value, str) else None


def _scraper_allowed() -> bool:
    """A direct scrape from CA_METRICS_ALLOWED (else /metrics would be public through
    the TLS listener): never a request a proxy forwarded (api/proxy.py marks it, trusted proxy or
    not, so nginx on the same host is not loopback), and the connection's own peer address."""
    if request.environ.get(FORWARDED):
        return False
    try:
        peer = ipaddress.ip_address(request.environ.get("REMOTE_ADDR") or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(n, strict=False) for n in ctx().settings.metrics_allowed)


@roles(PUBLIC)
def metrics_view() -> Response:
    if not _scraper_allowed():
        abort(404)  # the same answer as any path that does not exist
    return Response(render(ctx()), content_type=CONTENT_TYPE_LATEST)  # it names its charset already


def register(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.add_url_rule("/metrics", "metrics", metrics_view)
