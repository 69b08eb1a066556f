"""The help desk's web console (DESIGN §4b): server-rendered pages under /console/ on
the same services as the JSON API. A plain Flask blueprint: flask-openapi3 documents only its own
API blueprints, so /openapi.json does not list these routes; bearer-token auth does not apply
(the views carry no roles) and the console has its own operator sessions (console/security.py)."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from markupsafe import Markup

from ca_service.console import (
    audit_words,
    i18n,
    security,
    views_approvals,
    views_auth,
    views_certificates,
    views_codes,
    views_login_method,
    views_lookup,
    views_operations,
    views_users,
)
from ca_service.console.blueprint import bp
from ca_service.console.messages import label, reason_text
from ca_service.constants import BIDI_CONTROLS

__all__ = ["register"]
_PAGES = (
    views_auth, views_lookup, views_certificates, views_login_method, views_approvals, views_operations, views_users,
    views_codes,
)  # fmt: skip


_BIDI = re.compile(f"[{BIDI_CONTROLS}]")


def without_bidi_controls(value: Any) -> Any:
    """Jinja's finalize: every value a page shows loses its bidi controls (Markup stays Markup),
    so a name stored before the API refused them cannot reorder the text
    around it on an operator's screen."""
    if isinstance(value, Markup):  # already escaped (a macro, |safe): removing characters adds no markup
        return Markup(_BIDI.sub("", value))  # noqa: S704
    return _BIDI.sub("", value) if isinstance(value, str) else value


def register(app: Flask) -> None:
    security.configure(app)
    i18n.register(app)
    app.jinja_env.finalize = without_bidi_controls
    app.jinja_env.globals.update(
        csrf_token=security.csrf_token, label=label, reason_text=reason_text, action_label=audit_words.action_label,
        event_details=audit_words.details, detail_value=audit_words.value_text, who_key=audit_words.who_key,
        operator_words=lambda name: audit_words.operator_words(app.extensions["ca_service"], name),
    )  # fmt: skip
    app.register_blueprint(bp)
