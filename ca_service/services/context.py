"""Moved to ca_service.context (neutral ground below services). Re-exported for branches written
against the old path; new code imports ca_service.context."""

from __future__ import annotations

from ca_service.context import Actor, ServiceContext, build_context

__all__ = ["Actor", "ServiceContext", "build_context"]
