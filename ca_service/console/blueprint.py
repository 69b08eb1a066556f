"""The console's blueprint and the helpers every page module uses (context, actor, rendering)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _

from ca_service.context import Actor, ServiceContext
from ca_service.services.access.operators import OperatorInfo, console_actor

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")


def ctx() -> ServiceContext:
    context: ServiceContext = current_app.extensions["ca_service"]
    return context


def operator() -> OperatorInfo:
    info: OperatorInfo = g.operator
    return info


def actor() -> Actor:
    """The signed-in operator, audited as console:<username> with the operator role."""
    return console_actor(operator().username, g.get("request_id"))


def page(template: str, status: int = 200, **values: Any) -> tuple[str, int]:
    return render_template(template, **values), status


def paper_change_form(
    field: str, options: tuple[str, ...], current: str, choose: str, unchanged: str
) -> tuple[str, str, dict[str, str]]:
    """The posted `field` and `ticket` of a paper-procedure change (a role, a login method), with
    what is wrong with them: `field` must be one of `options` and differ from `current`, and the
    ticket is required."""
    value, ticket = request.form.get(field, ""), request.form.get("ticket", "").strip()
    problems = {}
    if value not in options:
        problems[field] = choose
    elif value == current:
        problems[field] = unchanged
    if not ticket:
        problems["ticket"] = _("Enter the paper ticket number.")
    return value, ticket, problems
