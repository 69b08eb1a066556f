"""One injectable clock: every 'now' in the service comes from here.

`SystemClock` is production. `OffsetFileClock` (enabled by CA_CLOCK_OFFSET_FILE, for tests and
rehearsals only) adds a number of seconds read from a file, so end-to-end tests can move a
running gunicorn forward in time ("40 days before expiry") without waiting.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for in-process tests."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta


class OffsetFileClock:
    """System time plus an offset in seconds read from a file (re-read when the file changes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = timedelta(0)

    def _current_offset(self) -> timedelta:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return timedelta(0)
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            text = self.path.read_text(encoding="utf-8").strip() or "0"
            self._offset = timedelta(seconds=float(text))
            self._stamp = stamp
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._current_offset()


def clock_from_settings(offset_file: Path | None) -> Clock:
    return OffsetFileClock(offset_file) if offset_file is not None else SystemClock()
