"""Timestamps as the API contract writes them (DESIGN §4): RFC 3339 in UTC, `2027-11-24T05:00:00Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def rfc3339(at: datetime) -> str:
    """`at` in UTC with a `Z` (a naive value is taken as UTC); microseconds kept only when set."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat().replace("+00:00", "Z")


def with_rfc3339(value: Any) -> Any:
    """`value` with every datetime inside (dicts, lists, tuples) rendered by rfc3339."""
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, dict):
        return {k: with_rfc3339(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [with_rfc3339(v) for v in value]
    return value
