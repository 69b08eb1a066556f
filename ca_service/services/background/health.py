"""Readiness checks: database and schema version, CA keys, Redis (reported, not required)."""

from __future__ import annotations

from ca_service.context import ServiceContext
from ca_service.errors import ServiceError
from ca_service.pki.keys import KeyUnavailable
from ca_service.services.authority.hierarchy import check_ca_keys
from ca_service.services.crl import overdue as crl_overdue
from ca_service.services.crl import root as root_crl
from ca_service.store.db import ping
from ca_service.store.migrate import schema_is_current
from config.settings import SettingsError


def redis_status(ctx: ServiceContext) -> str:
    if ctx.settings.redis_url is None:
        return "not configured"
    try:
        ctx.redis().ping()
    except Exception:
        return "down"
    return "ok"


def readiness(ctx: ServiceContext) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    try:
        ping(ctx.engine)
        checks["database"] = "ok"
        checks["schema"] = "ok" if schema_is_current(ctx.engine) else "behind: run `ca-service init`"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    if checks.get("database") == "ok":
        try:
            check_ca_keys(ctx)
            checks["ca_key"] = "ok"
        except (KeyUnavailable, SettingsError, ServiceError) as exc:
            checks["ca_key"] = str(exc)
        try:  # reported, not required (the service keeps working): the CaRootCrlExpiring alert pages
            checks["root_crl"] = root_crl.status(ctx)
        except Exception as exc:
            checks["root_crl"] = f"unknown: {type(exc).__name__}"
        try:  # reported, not required (whoever holds the scheduler lease): CaRevocationNotOnCrl pages
            checks["crl"] = crl_overdue.status(ctx)
        except Exception as exc:
            checks["crl"] = f"unknown: {type(exc).__name__}"
    checks["redis"] = redis_status(ctx)
    ready = all(checks.get(k) == "ok" for k in ("database", "schema", "ca_key"))
    return ready, checks
