"""The project's RQ queues, and one service context per worker process."""

from __future__ import annotations

import os

from ca_service.services.context import ServiceContext, build_context
from config.settings import load_settings

QUEUES = ("crl", "mail", "default")
_ctx: ServiceContext | None = None
_pid: int | None = None


def context() -> ServiceContext:
    """Built once per process. RQ forks a work horse per job: in a new process the pooled
    database connections of the parent are dropped (not closed) before first use."""
    global _ctx, _pid
    if _ctx is None:
        _ctx = build_context(load_settings(), pool_size=2)
    elif _pid != os.getpid():
        _ctx.engine.dispose(close=False)
        _ctx.cache.pop("redis", None)
    _pid = os.getpid()
    return _ctx
