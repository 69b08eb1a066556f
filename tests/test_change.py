"""The unit of work (services/audit/change.py): what follows a commit runs only after a commit, in
order (the change's own callbacks, then sealing and the relay), and only as far as the change
wrote something that needs it; a rolled-back change runs none of it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import func, select

from ca_service.context import Actor, ServiceContext
from ca_service.outbox import records as outbox
from ca_service.services.audit import post_commit
from ca_service.services.audit.change import change
from ca_service.store.models import AuditEvent, OutboxEntry

ACTOR = Actor(client_name="change-tests", role="operator", request_id="req-1")


@pytest.fixture
def tail(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What ran after each commit, in order: callbacks' values and ("after_commit", seal, outbox)."""
    ran: list[Any] = []
    monkeypatch.setattr(post_commit, "after_commit", lambda ctx, *, seal, outbox: ran.append(("after_commit", seal, outbox)))
    return ran


def _count(ctx: ServiceContext, model: type) -> int:
    with ctx.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_committed_change_runs_its_callbacks_then_seals_and_relays(ctx, tail) -> None:
    with change(ctx, ACTOR) as uow:
        uow.audit("test.changed", target_type="test", target_id="1", n=1)
        uow.outbox(outbox.CRL_PUBLISH, reason="test")
        uow.on_commit(tail.append, "first")
        uow.on_commit(tail.append, "second")
        assert tail == []  # nothing before the commit
    assert tail == ["first", "second", ("after_commit", True, True)]
    with ctx.sessions() as s:
        entry = s.scalars(select(OutboxEntry)).one()
        assert (entry.kind, entry.request_id) == (outbox.CRL_PUBLISH, "req-1")
    assert _count(ctx, AuditEvent) == 1


def test_it_seals_only_what_audited_and_relays_only_what_queued(ctx, tail) -> None:
    with change(ctx, ACTOR) as uow:
        uow.audit("test.changed", target_type="test", target_id="1")
    with change(ctx, None) as uow:
        uow.outbox(outbox.NOTICE_EMAIL, notice_id=1)
        uow.outbox(outbox.NOTICE_EMAIL, for_request=False, notice_id=2)
        uow.outbox_many(outbox.NOTICE_EMAIL, [])  # nothing written: not queued by itself
    with change(ctx, ACTOR) as uow:
        uow.audit_row("test.changed", target_type="test", target_id="2")  # its store function writes it
    with change(ctx, ACTOR):
        pass  # wrote nothing: nothing follows
    assert tail == [("after_commit", True, False), ("after_commit", False, True), ("after_commit", True, False)]


def test_a_rolled_back_change_runs_nothing_after(ctx, tail) -> None:
    with pytest.raises(RuntimeError), change(ctx, ACTOR) as uow:
        uow.audit("test.changed", target_type="test", target_id="1")
        uow.outbox(outbox.CRL_PUBLISH, reason="test")
        uow.on_commit(tail.append, "never")
        raise RuntimeError("the change fails")
    assert tail == []
    assert _count(ctx, AuditEvent) == 0
    assert _count(ctx, OutboxEntry) == 0


def test_a_failing_callback_is_logged_and_the_rest_still_runs(ctx, tail, caplog) -> None:
    def broken() -> None:
        raise OSError("Redis is down")

    with caplog.at_level(logging.ERROR, logger="ca_service.change"), change(ctx, ACTOR) as uow:
        uow.audit("test.changed", target_type="test", target_id="1")
        uow.on_commit(broken)
        uow.on_commit(tail.append, "after the broken one")
    assert tail == ["after the broken one", ("after_commit", True, False)]
    assert "a step after a committed change failed" in caplog.text


def test_a_change_without_an_actor_audits_nothing(ctx, tail) -> None:
    with pytest.raises(TypeError), change(ctx, None) as uow:
        uow.audit("test.changed", target_type="test", target_id="1")
    assert tail == [] and _count(ctx, AuditEvent) == 0
