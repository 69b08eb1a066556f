"""The Flask application factory (gunicorn: `ca_service.api.app:create_app()`)."""

from __future__ import annotations

from flask import Flask, Response, g, request

from ca_service.api import (
    instrumentation,
    problems,
    routes_audit,
    routes_certificates,
    routes_est,
    routes_lifecycle,
    routes_ocsp,
    routes_public,
    routes_publication,
    routes_registry,
)
from ca_service.api.auth import check_request
from ca_service.api.json_depth import MAX_DEPTH, nesting_depth
from ca_service.api.ocsp_fast import OcspFastPath
from ca_service.api.openapi import make_openapi_app
from ca_service.api.proxy import TrustedProxies
from ca_service.console import register as register_console
from ca_service.context import ServiceContext, build_context
from ca_service.errors import InvalidInput, UnsupportedMediaType
from ca_service.services.access.blocks import AuthBlockState
from ca_service.services.background.jobs import register_routes
from ca_service.services.ocsp.state import OcspState
from config.logging import bind as bind_log
from config.logging import configure as configure_logging
from config.settings import load_settings


def _before_request() -> None:
    g.request_id = instrumentation.request_id_from(request.headers.get("X-Request-ID", ""))
    bind_log(request_id=g.request_id)
    if request.blueprint == "console":  # HTML forms with operator sessions (ca_service/console)
        return
    check_request()
    client = g.get("client")
    if client is not None:
        bind_log(api_client=client.name)
    if request.method in {"POST", "PUT", "PATCH"} and request.endpoint != "ocsp.ocsp_post" and request.blueprint != "est":
        data = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
        if data:
            if request.mimetype != "application/json":
                raise UnsupportedMediaType("send the body as application/json")
            if nesting_depth(data) > MAX_DEPTH:
                raise InvalidInput(
                    f"the JSON body nests deeper than {MAX_DEPTH} levels", fields={"body": f"nested deeper than {MAX_DEPTH}"}
                )
            # parsed once here; werkzeug caches it for the body's validation and the access log
            if request.get_json(silent=True) is None and data.strip() != b"null":
                raise InvalidInput("the request body is not valid JSON")


def _after_request(resp: Response) -> Response:
    resp.headers["X-Request-ID"] = g.get("request_id", "")
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def create_app(context: ServiceContext | None = None) -> Flask:
    ctx = context or build_context(load_settings())
    register_routes()  # the outbox relay after each change (ca_service/outbox/routes.py)
    if context is None:  # a real server (not a test's in-process app): JSON logs on stdout
        configure_logging(ctx.settings.log_level)
        ctx.local(OcspState).presigned = True  # OCSP hits without a database read (services/ocsp/invalidation)
        ctx.local(AuthBlockState).enabled = True  # the bad-token throttle without a Redis read (services/access/blocks)
    app = make_openapi_app(__name__)
    app.config["MAX_CONTENT_LENGTH"] = ctx.settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.validation_error_callback = problems.validation_problem
    app.extensions["ca_service"] = ctx
    for bp in (
        routes_registry.bp,
        routes_certificates.bp,
        routes_audit.bp,
        routes_public.bp,
        routes_ocsp.bp,
        routes_lifecycle.bp,
        routes_publication.bp,
        routes_est.bp,
        routes_est.est_bp,  # base64 bodies, not JSON
    ):
        app.register_api(bp)
    register_console(app)  # a plain blueprint: not in /openapi.json, not under bearer auth
    instrumentation.register(app)
    app.before_request(_before_request)
    app.after_request(_after_request)
    problems.register(app)
    fast = OcspFastPath(app.wsgi_app, ctx)  # pre-signed OCSP hits below Flask (api/ocsp_fast.py)
    app.wsgi_app = TrustedProxies(fast, ctx.settings.trusted_proxies)  # type: ignore[method-assign]
    return app
