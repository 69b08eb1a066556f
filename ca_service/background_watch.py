"""A daemon thread per process that keeps this process's copy of something current (blocked
addresses, pre-signed OCSP responses), and says until when the copy may answer on its own.

The thread is started by the first request that wants the copy, so after gunicorn forked the
worker: one per process, never inherited (a forked child has no thread, and its per-process
state is new: ServiceContext.local). `stop()` ends it (tests; a process that no longer wants the
copy); the next request starts a new one.

Neutral: knows no capability and imports nothing of the project (.importlinter)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


class Watching:
    """What one run of a watch's thread is handed: whether to go on, and where it says until when
    the copy is live. A stopped run's late writes land here and reach no later run."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.live_until = 0.0  # the copy answers on its own until this monotonic time
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, less if stopped meanwhile; True if stopped."""
        return self._stop.wait(seconds)

    def stop(self) -> None:
        self._stop.set()


class BackgroundWatch:
    """Start once per process, `live()` while the thread keeps the copy current, `stop()`."""

    def __init__(self, name: str) -> None:
        self.name = name  # the thread's
        self._lock = threading.Lock()
        self._run: Watching | None = None

    def started(self) -> bool:
        """Does this process's thread run (or has it been started and not stopped)?"""
        run = self._run
        return run is not None and run.pid == os.getpid()

    def live(self) -> bool:
        """May the copy answer on its own now (its thread said so, recently enough)?"""
        run = self._run
        return run is not None and run.pid == os.getpid() and time.monotonic() < run.live_until

    def start(self, target: Callable[[Watching], None], on_start: Callable[[], None] | None = None) -> bool:
        """Run `target(watching)` on a daemon thread unless this process's already runs; it
        returns once `watching.stopped`. `on_start` (under the watch's lock, before the thread
        starts) resets the copy. Returns whether it started one."""
        with self._lock:
            if self.started():
                return False
            run = self._run = Watching()
            if on_start is not None:
                on_start()
            run.thread = threading.Thread(target=target, args=(run,), name=self.name, daemon=True)
            run.thread.start()
        return True

    def stop(self, wait: float = 0.0) -> bool:
        """End the thread at its next check (the copy is no longer live from now); wait up to
        `wait` seconds for it. Whether no thread of this watch runs any more."""
        with self._lock:
            run, self._run = self._run, None
        if run is None or run.thread is None:
            return True
        run.stop()
        run.thread.join(wait)
        return not run.thread.is_alive()
