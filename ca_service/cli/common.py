"""Shared CLI plumbing: settings and context loading with one-line errors, output helpers."""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import click
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError as DatabaseUnavailable

from ca_service.context import Actor, ServiceContext, build_context
from ca_service.errors import ServiceError
from ca_service.pki.keys import KeyUnavailable
from ca_service.services.background.jobs import register_routes
from ca_service.store.errors import Unavailable as StoreUnavailable
from config.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def prepare_metrics_dir(data_dir: Path, name: str = "serve") -> None:
    """prometheus-client multiprocess mode: a fresh directory for this server instance
    (`$CA_DATA_DIR/metrics/<name>-<pid>`), never one another running instance writes to; the
    directories of instances that are gone are removed. An operator's PROMETHEUS_MULTIPROC_DIR
    is theirs to manage and left alone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    root = data_dir / "metrics"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.iterdir():
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    directory = root / f"{name}-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"ca-service: error: {message}", err=True)
    sys.exit(code)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


def context() -> ServiceContext:
    """The context of a command that may change something: the routes of its outbox relay too."""
    register_routes()
    return build_context(settings())


NOT_INITIALISED = "not initialised: run `ca-service init`, or load var/dev.env (set -a; . var/dev.env; set +a)"


def reading_context() -> ServiceContext:
    """The context of a command that only reads (search, show, list): it never creates the data
    folder or a database. Run outside a set-up folder, it says what to do instead of leaving an
    empty ./var/ca.sqlite3 behind and failing on a missing table."""
    loaded = settings()
    url = make_url(loaded.database_url)
    where = url.database if url.get_backend_name() == "sqlite" else None
    if where and where != ":memory:" and not Path(where).is_file():
        fail(f"{NOT_INITIALISED} (no database at {where})", 1)
    ctx = build_context(loaded, create_data_dir=False)
    try:
        migrated = inspect(ctx.engine).has_table("alembic_version")
    except DatabaseUnavailable as exc:
        fail(f"database unavailable: {database_problem(exc)}", 1)
    if not migrated:
        ctx.engine.dispose()
        fail(f"{NOT_INITIALISED} (the database {url.render_as_string(hide_password=True)} has no tables)", 1)
    return ctx


def cli_actor(ticket: str | None = None) -> Actor:
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Actor(client_name=f"cli:{user}", role="operator", request_id=f"cli-ticket-{ticket}"[:64] if ticket else None)


def handle_errors(func: F) -> F:
    """Domain, key, settings and database-connection errors become one clear line and exit
    status 1 or 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SettingsError as exc:
            fail(str(exc))
        except KeyUnavailable as exc:
            fail(str(exc))
        except StoreUnavailable as exc:
            fail(f"database unavailable: {exc.reason}", 1)
        except ServiceError as exc:
            where = f" ({_redis_tried()})" if exc.code == "queue-unavailable" else ""
            fail(f"{exc.detail} [{exc.code}]{where}", 1)
        except DatabaseUnavailable as exc:
            fail(f"database unavailable: {database_problem(exc)}", 1)

    return wrapper  # type: ignore[return-value]


def database_problem(exc: DatabaseUnavailable) -> str:
    """The driver's first line (e.g. psycopg's 'connection to server at ... failed: Connection
    refused'), without SQLAlchemy's statement and link; drivers do not put passwords in it."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__


def _redis_tried() -> str:
    """Which Redis the CLI tried, password hidden: the usual cause is the wrong REDIS_URL (beside
    `ca-service dev`: load var/dev.env), and waiting never helps with that."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return "REDIS_URL is not set; beside `ca-service dev`: set -a; . var/dev.env; set +a"
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
        url = urlunsplit(parts._replace(netloc=netloc))
    return f"tried REDIS_URL={url}"


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, datetime):
        return obj.isoformat().replace("+00:00", "Z")
    return obj


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(to_jsonable(obj), ensure_ascii=False, indent=2))


def local_time(value: datetime) -> str:
    """A time as the help desk reads it: in CA_TIMEZONE (Japan time, like the console) with its
    offset, e.g. 2027-11-24T14:00:00+09:00. --json keeps RFC 3339 in UTC for scripts."""
    return value.astimezone(settings().tz).isoformat(timespec="seconds")


def shown(value: Any) -> str:
    """One value of a human table or field list ('-' when empty, times in CA_TIMEZONE)."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return local_time(value)
    return str(to_jsonable(value))


class WhenParam(click.ParamType):
    """A date or date-time for --since/--until: with Z or an offset it is taken as written;
    without, it is CA_TIMEZONE (Japan time, as the console shows). A bare date is its start."""

    name = "DATE[THH:MM[:SS]][Z|+09:00]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
        except ValueError:
            self.fail(f"{value!r} is not a date or date-time (2027-11-24, 2027-11-24T14:00, 2027-11-24T05:00Z)", param, ctx)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=settings().tz)


WHEN = WhenParam()


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[shown(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
