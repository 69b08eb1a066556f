"""The reference front end's screens (Flask). Behind nginx (TLS, `ssl_verify_client optional`),
which forwards the certificate the browser presented as `X-SSL-Client-Cert` (URL-escaped PEM).

Screens: login (電子証明書方式 / ID・パスワード方式), 電子証明書発行 (enrolment code + ca-enroll
instructions), the screen after login with the R6 notices, and the master's
利用者管理≫電子証明書の失効. Sessions stay server-side (sessions.py), found by certificate serial."""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from cryptography import x509
from flask import Flask, abort, g, redirect, render_template, request
from werkzeug.wrappers import Response

from examples.frontend import ca_events
from examples.frontend.ca_api import CaApi
from examples.frontend.passwords import Passwords
from examples.frontend.sessions import Session, SessionStore
from examples.frontend.texts import ENROLMENT_REFUSED, LOGIN_REFUSED, REASONS, REVOCATION_REFUSED, refused

COOKIE = "bank_session"
JST = ZoneInfo("Asia/Tokyo")


def create_app(ca: CaApi, passwords: Passwords, *, public_url: str, trusted_proxy: str = "127.0.0.1",
               webhook_secret: str | None = None) -> Flask:  # fmt: skip
    """`webhook_secret` (`whsec_…`, the CA's CA_WEBHOOK_SECRET): receive the CA's events at
    POST /ca-events (ca_events.py); without it the front end hears of a revocation only at the
    next login."""
    app = Flask(__name__)
    app.config["TEMPLATES_AUTO_RELOAD"] = False
    store = SessionStore()
    app.extensions["sessions"] = store
    if webhook_secret:
        ca_events.register(app, store, webhook_secret)  # certificate.revoked ends its sessions at once
    proxy = ipaddress.ip_address(trusted_proxy)
    app.add_template_filter(_jst, "jst")

    def presented_pem() -> str | None:
        """The client certificate nginx verified, only when the request came through nginx."""
        if ipaddress.ip_address(request.remote_addr or "0.0.0.0") != proxy:  # noqa: S104
            return None
        pem = unquote(request.headers.get("X-SSL-Client-Cert", ""))
        return pem if pem.startswith("-----BEGIN CERTIFICATE-----") else None

    def presented_serial() -> str | None:
        pem = presented_pem()
        return format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x") if pem else None

    @app.before_request
    def load_session() -> None:
        session = store.get(request.cookies.get(COOKIE))
        if session is not None and session.method == "certificate" and presented_serial() != session.serial:
            store.end(session.sid)  # the session belongs to the certificate it was opened with
            session = None
        g.session = session

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'"
        resp.headers["X-Frame-Options"] = "DENY"
        return resp

    def start_session(login_id: str, user: dict[str, Any], method: str, certificate: dict[str, Any] | None,
                      notices: list) -> Response:  # fmt: skip
        serial, not_after = (certificate["serial"], certificate["not_after"]) if certificate else (None, None)
        session = store.open(login_id=login_id, org_id=user["org_id"], role=user["role"], method=method,
                             serial=serial, notices=notices, not_after=not_after)  # fmt: skip
        resp = redirect("/home")
        resp.set_cookie(COOKIE, session.sid, secure=True, httponly=True, samesite="Lax")
        return resp

    def login_error(message: str, status: int = 403) -> tuple[str, int]:
        return render_template("login.html", error=message), status

    @app.get("/")
    def login_screen() -> str:
        return render_template("login.html", error=None)

    @app.post("/login/certificate")
    def login_certificate() -> Any:
        login_id, password = request.form.get("login_id", "").strip(), request.form.get("password", "")
        if not passwords.check(login_id, password):
            return login_error(LOGIN_REFUSED["bad-password"], 401)
        pem = presented_pem()
        if pem is None:
            return login_error(LOGIN_REFUSED["no-certificate"])
        answer = ca.login_check(login_id, "certificate", pem)
        if answer.status != 200:
            return login_error(refused(LOGIN_REFUSED, answer.code), 502 if answer.status >= 500 else 403)
        if not answer.body["allowed"]:
            return login_error(refused(LOGIN_REFUSED, answer.body["reason"]))
        user = ca.user(login_id).body
        return start_session(login_id, user, "certificate", answer.body["certificate"], answer.body["notices"])

    @app.post("/login/password")
    def login_password() -> Any:
        login_id, password = request.form.get("login_id", "").strip(), request.form.get("password", "")
        if not passwords.check(login_id, password):
            return login_error(LOGIN_REFUSED["bad-password"], 401)
        answer = ca.login_check(login_id, "id_password")
        if answer.status != 200:
            return login_error(refused(LOGIN_REFUSED, answer.code))
        if not answer.body["allowed"]:
            return login_error(refused(LOGIN_REFUSED, answer.body["reason"]))
        return start_session(login_id, ca.user(login_id).body, "id_password", None, [])

    @app.route("/enrolment", methods=["GET", "POST"])
    def enrolment() -> Any:
        if request.method == "GET":
            return render_template("enrolment.html", error=None)
        login_id, password = request.form.get("login_id", "").strip(), request.form.get("password", "")
        if not passwords.check(login_id, password):
            return render_template("enrolment.html", error=LOGIN_REFUSED["bad-password"]), 401
        # a real front end also asks for its own one-time password here (DESIGN §4c)
        user = ca.user(login_id)
        if user.status == 200 and user.body.get("login_method") != "certificate":
            return render_template("enrolment.html", error=ENROLMENT_REFUSED["login-method-not-certificate"]), 409
        current = user.body.get("current_certificate") if user.status == 200 else None
        if current:
            return render_template("enrolment.html", error=ENROLMENT_REFUSED["active-certificate-exists"]), 409
        answer = ca.enrolment_code(login_id)
        if answer.status != 201:
            return render_template("enrolment.html", error=refused(ENROLMENT_REFUSED, answer.code)), 409
        return render_template("enrolment_code.html", login_id=login_id, code=answer.body["code"],
                               expires_at=answer.body["expires_at"], server=public_url)  # fmt: skip

    def require_session() -> Session:
        if g.session is None:
            abort(redirect("/"))
        return g.session

    def check_csrf(session: Session) -> None:
        if not hmac.compare_digest(request.form.get("csrf", ""), session.csrf):
            abort(400)

    @app.get("/home")
    def home() -> str:
        session = require_session()
        fresh = ca.notices(session.login_id)  # the notices of now, not of the login moment
        notices = fresh.body["items"] if fresh.status == 200 else session.notices
        return render_template("home.html", s=session, notices=notices)

    @app.get("/users/certificates")
    def revocation_list() -> str:
        session = require_session()
        if session.role != "master":
            abort(403)
        return render_template("revocation.html", s=session, rows=_general_users(ca, session), reasons=REASONS,
                               message=request.args.get("done"), error=None)  # fmt: skip

    @app.post("/users/certificates/revoke")
    def revoke() -> Any:
        session = require_session()
        check_csrf(session)
        if session.role != "master":
            abort(403)
        serial, reason = request.form.get("serial", ""), request.form.get("reason", "unspecified")
        answer = ca.revoke(serial, reason if reason in REASONS else "unspecified", session.login_id)
        if answer.status not in (200, 201):
            return render_template("revocation.html", s=session, rows=_general_users(ca, session), reasons=REASONS,
                                   message=None, error=refused(REVOCATION_REFUSED, answer.code)), 409  # fmt: skip
        store.end_by_serial(serial)  # the revoked certificate's own sessions end now
        return redirect(f"/users/certificates?done={serial}")

    @app.post("/logout")
    def logout() -> Any:
        session = require_session()
        check_csrf(session)
        store.end(session.sid)
        resp = redirect("/")
        resp.delete_cookie(COOKIE)
        return resp

    return app


def _jst(instant: str) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(JST)
    return moment.strftime("%Y年%m月%d日 %H:%M:%S")


def _general_users(ca: CaApi, session: Session) -> list[dict[str, Any]]:
    """The organisation's general users holding a valid certificate (R10: a master revokes those)."""
    rows = []
    for cert in ca.active_certificates(session.org_id):
        user = ca.user(cert["login_id"])
        if user.status == 200 and user.body["role"] == "general":
            rows.append({**cert, "display_name": user.body.get("display_name") or ""})
    return sorted(rows, key=lambda r: r["login_id"])
