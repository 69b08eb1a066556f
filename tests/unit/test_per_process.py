"""A capability's per-process state (`bare.local`), the background watch that keeps a copy live,
and the breaker: made once per process, never inherited by a forked child, stoppable."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ca_service.background_watch import BackgroundWatch, Watching
from ca_service.context import ServiceContext
from ca_service.per_process import Breaker
from ca_service.store.db import make_engine, make_session_factory


@dataclasses.dataclass
class _State:
    count: int = 0


class _Other:
    pass


@pytest.fixture
def bare() -> ServiceContext:
    """A context with an empty in-memory database (not the suite's `ctx`, which needs the CA)."""
    engine = make_engine("sqlite://")
    nothing: Any = None  # local() reads no setting and no clock
    return ServiceContext(settings=nothing, clock=nothing, engine=engine, sessions=make_session_factory(engine))


def _in_child(check: Callable[[], bool]) -> bool:
    """`check()` run in a forked child."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, b"y" if check() else b"n")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    answer = os.read(read, 1)
    os.close(read)
    return answer == b"y"


def test_local_is_one_instance_per_class_made_on_first_use(bare):
    state = bare.local(_State)
    state.count = 3
    assert bare.local(_State) is state and bare.local(_State).count == 3
    assert isinstance(bare.local(_Other), _Other)
    replaced = dataclasses.replace(bare, redis_conn=None)  # as the tests' contexts with other settings
    assert replaced.local(_State) is state  # one process, one state


def test_local_is_made_once_when_threads_race(bare):
    made: list[object] = []

    class Slow:
        def __init__(self) -> None:
            time.sleep(0.01)
            made.append(self)

    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(bare.local(Slow))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(f is made[0] for f in found)


def test_a_forked_child_starts_with_new_state(bare):
    state = bare.local(_State)
    state.count = 7
    assert _in_child(lambda: bare.local(_State) is not state and bare.local(_State).count == 0)
    assert bare.local(_State) is state and state.count == 7  # the parent's is untouched


def test_the_breaker_skips_the_dependency_for_its_time_after_a_failure():
    breaker = Breaker(60.0)
    assert breaker.allows()
    breaker.trip()
    assert not breaker.allows()
    quick = Breaker(0.0)
    quick.trip()
    assert quick.allows()


def _live_until_stopped(watching: Watching) -> None:
    while not watching.stopped:
        watching.live_until = time.monotonic() + 60
        watching.wait(0.01)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.005)


def test_a_watch_starts_once_per_process_and_stop_ends_its_thread():
    watch = BackgroundWatch("test-watch")
    runs: list[Watching] = []

    def target(watching: Watching) -> None:
        runs.append(watching)
        _live_until_stopped(watching)

    assert not watch.started() and not watch.live()
    assert watch.start(target)
    assert not watch.start(target)  # this process's runs already
    _until(watch.live)
    assert len(runs) == 1 and any(t.name == "test-watch" for t in threading.enumerate())
    assert watch.stop(wait=5)  # the thread ended
    assert not watch.started() and not watch.live()
    assert watch.start(target)  # a new one, on the next use
    _until(watch.live)
    assert watch.stop(wait=5) and len(runs) == 2


def test_a_stopped_runs_late_writes_do_not_make_the_next_one_live():
    watch = BackgroundWatch("test-watch")
    runs: list[Watching] = []
    watch.start(runs.append)
    watch.stop(wait=5)
    watch.start(lambda watching: None)  # started, never polls
    runs[0].live_until = time.monotonic() + 60  # the old thread's last poll, after the stop
    assert watch.started() and not watch.live()
    watch.stop(wait=5)


def test_a_forked_child_has_no_watch_running():
    watch = BackgroundWatch("test-watch")
    watch.start(_live_until_stopped)
    _until(watch.live)
    try:
        assert _in_child(lambda: not watch.started() and not watch.live())  # threads do not survive a fork
    finally:
        assert watch.stop(wait=5)


def test_on_start_resets_the_copy_before_the_thread_runs():
    watch = BackgroundWatch("test-watch")
    copy = {"stale": 1.0}
    seen: list[dict[str, float]] = []
    watch.start(lambda watching: seen.append(dict(copy)), on_start=copy.clear)
    assert watch.stop(wait=5)
    assert seen == [{}]
