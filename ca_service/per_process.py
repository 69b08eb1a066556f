"""Building blocks of the state a capability keeps per process (`ServiceContext.local`): a value
made once, a value kept for a while, a bounded LRU, a circuit breaker.

Neutral: they know no capability and import nothing of the project (.importlinter)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


class Once(Generic[T]):
    """A value made once per process, on first use (double-checked under its own lock)."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.lock = threading.Lock()

    def get(self, make: Callable[[], T]) -> T:
        value = self.value
        if value is not None:
            return value
        with self.lock:
            if self.value is None:
                self.value = make()
            return self.value

    def clear(self) -> None:
        self.value = None


class Expiring(Generic[T]):
    """A value kept for `seconds` (monotonic clock), then made again."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entry: tuple[float, T] | None = None

    def get(self, make: Callable[[], T]) -> T:
        entry = self._entry
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        value = make()
        self._entry = (time.monotonic() + self.seconds, value)
        return value

    def clear(self) -> None:
        self._entry = None


class Lru(Generic[K, V]):
    """A thread-safe bounded LRU (gthread workers share one per process)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def drop(self, keys: list[K]) -> None:
        with self.lock:
            for key in keys:
                self.entries.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


class Breaker:
    """A circuit breaker: after a failure (`trip`) the dependency is not tried for `open_for`
    seconds (monotonic clock), so an outage costs no timeout per request."""

    def __init__(self, open_for: float) -> None:
        self.open_for = open_for
        self._closed_at = 0.0  # the monotonic time from which the dependency is tried again

    def allows(self) -> bool:
        return time.monotonic() >= self._closed_at

    def trip(self) -> None:
        self._closed_at = time.monotonic() + self.open_for
