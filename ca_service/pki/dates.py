"""Calendar arithmetic for validity periods."""

from __future__ import annotations

import calendar
from datetime import datetime


def add_months(at: datetime, months: int) -> datetime:
    """The same wall-clock time `months` calendar months later; clamps to the month's last day
    (2028-02-29 + 12 months -> 2029-02-28)."""
    month_index = at.month - 1 + months
    year = at.year + month_index // 12
    month = month_index % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return at.replace(year=year, month=month, day=day)


def add_years(at: datetime, years: int) -> datetime:
    return add_months(at, 12 * years)
