"""Japanese by default, English on request (`?lang=en`, remembered in a cookie): Flask-Babel with
the catalogue in console/translations (messages.po, compiled to messages.mo and committed; the
msgids are the English text). Dates are shown in CA_TIMEZONE (Japan time) with the zone."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel

from ca_service.console.blueprint import ctx
from ca_service.console.security import LANG_COOKIE

LANGUAGES = ("ja", "en")
TRANSLATIONS = Path(__file__).parent / "translations"


def select_locale() -> str:
    asked = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGUAGES else "ja"


def local_time(value: datetime | str | None, with_seconds: bool = False) -> str:
    """'2027-11-24 14:00 JST' in CA_TIMEZONE, from a datetime or the RFC 3339 text the services
    serve (an audit checkpoint's signed_at, a job's result)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        parsed = value
    local = parsed.astimezone(ctx().settings.tz)
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M") + f" {local.tzname()}"


def register(app: Flask) -> None:
    app.config.update(BABEL_DEFAULT_LOCALE="ja", BABEL_TRANSLATION_DIRECTORIES=str(TRANSLATIONS))
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["localtime"] = local_time
    app.jinja_env.globals["current_lang"] = select_locale
