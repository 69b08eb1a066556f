"""Console sessions, CSRF and response headers.

The session is Flask's signed cookie (itsdangerous, CA_CONSOLE_SECRET_KEY: the same key on every
worker and node), scoped to /console, HttpOnly, Secure, SameSite=Strict. It holds the operator,
the account's session epoch (logout, reset and disable move it on: older cookies stop working),
the last activity time (CA_CONSOLE_SESSION_MINUTES of inactivity end it) and the CSRF token that
every form posts back as `csrf_token`."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from flask import Flask, Response, abort, g, redirect, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import bp, ctx
from ca_service.services.access import operators

PUBLIC_ENDPOINTS = {"console.login", "console.static"}
CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
LANG_COOKIE = "ca_console_lang"


def configure(app: Flask) -> None:
    settings = app.extensions["ca_service"].settings
    secret = settings.console_secret()
    if secret is not None:
        app.secret_key = secret
    app.config.update(
        SESSION_COOKIE_NAME="ca_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=settings.console_secure_cookies,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.console_session_minutes),
    )


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def start_session(info: operators.OperatorInfo) -> None:
    """A new session for a freshly authenticated operator (never the pre-login one: no fixation)."""
    session.clear()
    session.permanent = True
    session.update(op=info.username, epoch=info.session_epoch, seen=ctx().clock.now().timestamp(), csrf=secrets.token_urlsafe(32))


@bp.before_request
def _guard() -> BaseResponse | None:
    if ctx().settings.console_secret() is None:
        abort(503, "the console is switched off: set CA_CONSOLE_SECRET_KEY_FILE")
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        if not sent or not hmac.compare_digest(sent, str(session.get("csrf", ""))):
            abort(400, "csrf")
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    now = ctx().clock.now().timestamp()
    username, epoch, seen = session.get("op"), session.get("epoch"), session.get("seen")
    idle = ctx().settings.console_session_minutes * 60
    info = None
    if isinstance(username, str) and isinstance(epoch, int) and isinstance(seen, int | float) and now - seen <= idle:
        info = operators.session_operator(ctx(), username, epoch)
    if info is None:
        expired = username is not None
        session.clear()
        target = request.full_path if request.method == "GET" else url_for("console.index")
        return redirect(url_for("console.login", next=target, expired=1 if expired else None))
    session["seen"] = now
    g.operator = info
    return None


@bp.after_request
def _headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["Cache-Control"] = "no-store"
    lang = request.args.get("lang")
    if lang in ("ja", "en"):
        resp.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path="/console", httponly=True, samesite="Strict",
            secure=ctx().settings.console_secure_cookies,
        )  # fmt: skip
    return resp
