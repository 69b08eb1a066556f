"""Login (username, password, otp), logout, and the error pages of the console."""

from __future__ import annotations

from flask import flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from ca_service.console.blueprint import bp, ctx, operator, page
from ca_service.console.messages import error_text
from ca_service.console.security import csrf_token, start_session
from ca_service.errors import ServiceError
from ca_service.services.access import operators


def _safe_next(target: str | None) -> str:
    """A page of the console to go to after login, else the console's start page. Printable ASCII
    only: CR/LF in a Location header would answer 500, and nothing else there
    (spaces, other controls, backslashes) is a link the console made."""
    if target and target.startswith("/console/") and "\\" not in target and all("\x21" <= char <= "\x7e" for char in target):
        return target
    return url_for("console.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> tuple[str, int] | BaseResponse:
    csrf_token()  # the pre-login session carries the login form's CSRF token
    if request.method == "GET":
        return page("login.html", expired=bool(request.args.get("expired")), next=request.args.get("next", ""))
    form = request.form
    try:
        info = operators.authenticate(
            ctx(), form.get("username", "").strip(), form.get("password", ""), form.get("otp", ""), g.get("request_id"),
            address=request.remote_addr or "unknown",  # the peer, or what a trusted proxy says (api/proxy.py)
        )  # fmt: skip
    except (operators.LoginRefused, operators.OperatorLocked, operators.LoginLimited) as refused:
        return page(
            "login.html", refused.status, error=error_text(refused), next=form.get("next", ""), username=form.get("username", "")
        )
    start_session(info)
    return redirect(_safe_next(form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> BaseResponse:
    operators.logout(ctx(), operator().username, g.get("request_id"))
    session.clear()
    flash(_("You have logged out."))
    return redirect(url_for("console.login"))


@bp.errorhandler(ServiceError)
def _service_error(err: ServiceError) -> tuple[str, int]:
    return page("error.html", err.status, message=error_text(err), code=err.code)


@bp.errorhandler(400)
@bp.errorhandler(503)
def _http_error(err: HTTPException) -> tuple[str, int]:
    if err.description == "csrf":
        message = _("The form was refused: its security token is missing or out of date. Reload the page and try again.")
    else:
        message = err.description or ""
    return page("error.html", err.code or 400, message=message, code=str(err.code))


@bp.route("/<path:unknown>")
def not_found(unknown: str) -> tuple[str, int]:
    """Any other page under /console/ (a mistyped or outdated link): the console's own page in the
    operator's language, not the JSON API's problem document."""
    return page("error.html", 404, message=_("There is no such page in the console."), code="404")
