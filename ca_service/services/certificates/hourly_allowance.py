"""The sliding hour both brakes count in (issuance_brake.py, revocation_brake.py): an
organisation's allowance of braked changes per hour, and when the next one is allowed again."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

WINDOW = timedelta(hours=1)


def window_start(now: datetime) -> datetime:
    """The changes counted against the allowance are those at or after this instant."""
    return now - WINDOW


def seconds_until_allowed(count: int, limit: int, oldest: datetime | None, now: datetime) -> int | None:
    """None while fewer than `limit` changes fall in the hour; else the whole seconds (at least 1)
    until the oldest of them leaves it: the Retry-After of the refusal."""
    if count < limit:
        return None
    return max(1, math.ceil(((oldest or now) + WINDOW - now).total_seconds()))
